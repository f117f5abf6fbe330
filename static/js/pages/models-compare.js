/* The Compare page (templates/models/compare.html): one metric of several models over epochs or wall time. */
(function () {
    'use strict';
    const el = DIGITS.el;
    const JSON_URL = DIGITS.url('/models/compare.json') + window.location.search;
    const byId = function (id) { return document.getElementById(id); };
    let data = DIGITS.pageData().data;
    // One line per model, told apart by id: two models may share a name.
    const chart = DIGITS.chart('compare-chart', {
        key: function (dataset) { return dataset.modelId; },
        options: DIGITS.chart.overEpochs('', {
            plugins: {tooltip: {callbacks: {
                title: function (items) {
                    if (!items.length) return '';
                    const point = items[0].raw;
                    return xAxis() === 'time' ? DIGITS.formatDuration(point.seconds) + ' (epoch ' + DIGITS.formatEpoch(point.epoch) + ')'
                        : 'epoch ' + DIGITS.formatEpoch(point.x);
                },
            }}},
        }),
    });
    const params = new URLSearchParams(window.location.search);

    function lowerIsBetter(metric) { return /loss|error|lr$/.test(metric); }
    // Accuracy in percent, as the model pages plot it.
    function isPercent(metric) { return metric.indexOf('accuracy') >= 0; }
    function formatValue(metric, value) {
        return isPercent(metric) ? value.toFixed(2) + '%' : DIGITS.formatMetric(value);
    }
    function xAxis() { return byId('compare-x').value; }
    // Wall time in the unit that suits the longest run.
    function timeUnit() {
        const longest = Math.max(0, ...data.models.flatMap(function (m) { return m.points.map(function (p) { return p.time || 0; }); }));
        return longest > 3 * 3600 ? {name: 'hours', seconds: 3600} : longest > 120 ? {name: 'minutes', seconds: 60} : {name: 'seconds', seconds: 1};
    }

    function pointsOf(model, metric, axis) {
        const unit = timeUnit().seconds;
        return model.points.filter(function (p) {
            return p.values[metric] != null && isFinite(p.values[metric]) && p[axis] != null;
        }).map(function (p) {
            const value = p.values[metric];
            return {x: axis === 'time' ? p.time / unit : p.epoch, y: isPercent(metric) ? value * 100 : value,
                    epoch: p.epoch, seconds: p.time};
        });
    }

    function renderMetricChoices() {
        const select = byId('compare-metric');
        const wanted = select.value || params.get('metric')
            || ['val/loss', 'train/loss'].find(function (m) { return data.metrics.indexOf(m) >= 0; }) || data.metrics[0];
        select.replaceChildren.apply(select, data.metrics.map(function (metric) {
            const option = el('option', {value: metric}, metric);
            option.selected = metric === wanted;
            return option;
        }));
    }

    function render() {
        const metric = byId('compare-metric').value;
        const axis = xAxis();
        const series = data.models.map(function (model, i) {
            return {model: model, color: DIGITS.chart.color(i), points: pointsOf(model, metric, axis)};
        });
        const empty = !metric || series.every(function (s) { return !s.points.length; });
        const note = byId('compare-empty');
        note.classList.toggle('d-none', !empty);
        note.textContent = !metric ? 'No metrics yet: they appear as the models train.'
            : 'No ' + metric + (axis === 'time' ? ' with a time recorded.' : ' yet.');
        renderTable(series, metric);
        const datasets = series.map(function (s) {
            return {label: s.model.name, modelId: s.model.id, data: s.points, borderColor: s.color, backgroundColor: s.color,
                    borderWidth: 1.5, pointRadius: metric.indexOf('val/') === 0 ? 2.5 : 0, tension: 0, fill: false};
        });
        const xTitle = axis === 'time' ? 'wall time (' + timeUnit().name + ' since training started)' : 'epoch';
        // By epoch the axis ends at the last epoch reached, not at the next round number.
        const lastX = Math.max(0, ...series.flatMap(function (s) { return s.points.map(function (p) { return p.x; }); }));
        chart.draw({datasets: datasets}, function (options) {
            options.scales.x.title.text = xTitle;
            options.scales.x.max = axis === 'epoch' && lastX > 0 ? lastX : undefined;
            options.scales.y.title.text = isPercent(metric) ? metric + ' (%)' : metric;
            options.plugins.tooltip.callbacks.label = function (item) {
                return item.dataset.label + ': ' + formatValue(metric, item.parsed.y);
            };
        });
    }

    function renderTable(series, metric) {
        const tbody = byId('compare-table').tBodies[0];
        tbody.replaceChildren.apply(tbody, series.map(function (s) {
            const byEpoch = pointsOf(s.model, metric, 'epoch');
            const last = byEpoch.length ? byEpoch[byEpoch.length - 1] : null;
            const best = byEpoch.reduce(function (b, p) {
                return !b || (lowerIsBetter(metric) ? p.y < b.y : p.y > b.y) ? p : b;
            }, null);
            return el('tr', {className: 'compare-model', dataset: {id: s.model.id}}, [
                el('td', null, [el('span', {style: {color: s.color}}, '\u25A0 '), el('a', {href: s.model.url}, s.model.name)]),
                el('td', null, DIGITS.statusBadge(s.model.status)),
                el('td', {className: 'text-end'}, last ? formatValue(metric, last.y) : '\u2014'),
                el('td', {className: 'text-end'}, best ? formatValue(metric, best.y) + ' (' + DIGITS.formatEpoch(best.epoch) + ')' : '\u2014'),
            ]);
        }));
    }

    /* The runs' parameters side by side, one column per model; rows whose values differ are marked. */
    function parameterText(key, value) {
        if (value == null || value === '') return '\u2014';
        if (key === 'best_val_accuracy') return (value * 100).toFixed(2) + '%';
        if (key === 'best_val_loss') return DIGITS.formatMetric(value);
        if (key === 'duration') return DIGITS.formatDuration(value);
        return String(value);
    }

    function renderParameters() {
        const onlyDifferences = byId('differences-only').checked;
        const table = byId('parameters-table');
        const head = table.tHead.rows[0];
        head.replaceChildren.apply(head, [el('th', null, 'Parameter')].concat(data.models.map(function (model, i) {
            return el('th', null, [el('span', {style: {color: DIGITS.chart.color(i)}}, '\u25A0 '), el('a', {href: model.url}, model.name)]);
        })));
        const rows = [];
        (data.parameter_names || []).forEach(function (entry) {
            const key = entry[0];
            const texts = data.models.map(function (model) { return parameterText(key, (model.parameters || {})[key]); });
            if (texts.every(function (t) { return t === '\u2014'; })) return;
            const differs = data.models.length > 1 && new Set(texts).size > 1;
            if (onlyDifferences && !differs) return;
            rows.push(el('tr', {className: 'parameter' + (differs ? ' parameter-differs' : ''), dataset: {key: key}},
                [el('th', {className: 'fw-semibold text-secondary text-nowrap', scope: 'row'}, entry[1])].concat(texts.map(function (text) {
                    return el('td', {className: differs ? 'fw-semibold' : ''}, text);
                }))));
        });
        const tbody = table.tBodies[0];
        tbody.replaceChildren.apply(tbody, rows.length ? rows
            : [el('tr', null, el('td', {colspan: data.models.length + 1, className: 'text-muted'}, 'The runs share every parameter.'))]);
    }
    byId('differences-only').addEventListener('change', renderParameters);

    function remember() {
        params.set('metric', byId('compare-metric').value);
        params.set('x', xAxis());
        window.history.replaceState(null, '', window.location.pathname + '?' + params.toString());
    }

    if (params.get('x') === 'time') byId('compare-x').value = 'time';
    byId('compare-metric').addEventListener('change', function () { remember(); render(); });
    byId('compare-x').addEventListener('change', function () { remember(); render(); });

    // Models still training: their curves grow.
    setInterval(async function () {
        const active = data.models.some(function (m) { return m.status === 'Running' || m.status === 'Waiting'; });
        if (!active || document.hidden) return;
        try {
            data = await DIGITS.fetchJSON(JSON_URL);
            renderMetricChoices();
            render();
            renderParameters();
        } catch (error) { /* the next poll tries again */ }
    }, 5000);

    renderMetricChoices();
    render();
    renderParameters();
})();
