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
            return {x: axis === 'time' ? p.time / unit : p.epoch, y: p.values[metric], epoch: p.epoch, seconds: p.time};
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
        chart.draw({datasets: datasets}, function (options) {
            options.scales.x.title.text = xTitle;
            options.scales.y.title.text = metric;
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
                el('td', {className: 'text-end'}, last ? DIGITS.formatMetric(last.y) : '\u2014'),
                el('td', {className: 'text-end'}, best ? DIGITS.formatMetric(best.y) + ' (' + DIGITS.formatEpoch(best.epoch) + ')' : '\u2014'),
            ]);
        }));
    }

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
        } catch (error) { /* the next poll tries again */ }
    }, 5000);

    renderMetricChoices();
    render();
})();
