/*
 * Every chart of every page, over the vendored Chart.js (global Chart). Only pages that draw load this file
 * and the library (templates/macros/page.html: chart_scripts()).
 *
 * DIGITS.chart(canvas, spec) makes a chart that is created the first time it has data and changed in place
 * after: live pages redraw on every Socket.IO update, and a new Chart each time would flicker and lose the
 * reader's hover.
 */
(function (DIGITS) {
    'use strict';

    const PALETTE = ['#0d6efd', '#fd7e14', '#198754', '#dc3545', '#6f42c1', '#20c997', '#d63384', '#6c757d', '#0dcaf0', '#ffc107'];

    function isPlainObject(value) {
        return value !== null && typeof value === 'object' && !Array.isArray(value)
            && Object.getPrototypeOf(value) === Object.prototype;
    }

    /* Options, nested: values of `extra` win; objects merge, anything else (arrays, functions) replaces. */
    function merge(base, extra) {
        const out = Object.assign({}, base);
        Object.keys(extra || {}).forEach(function (key) {
            out[key] = isPlainObject(out[key]) && isPlainObject(extra[key]) ? merge(out[key], extra[key]) : extra[key];
        });
        return out;
    }

    /* What every chart shares: it fills its .chart-box and draws at once (live data redraws often). */
    const SHARED = {responsive: true, maintainAspectRatio: false, animation: false};

    /**
     * A chart on `canvas` (the element or its id).
     * spec: {type ('line' by default), options (merged over the shared ones), plugins, key(dataset) -> what
     * identifies a dataset from one draw to the next (its label by default)}.
     * Returns {draw(data, adjust) -> the Chart (null without Chart.js), instance() -> the Chart or null}.
     * draw({labels, datasets}): datasets matched by key are changed in place (their style and data), new ones
     * are appended, gone ones removed; adjust(options, chart), when given, changes options before the redraw.
     */
    DIGITS.chart = function (canvas, spec) {
        spec = spec || {};
        const key = spec.key || function (dataset) { return dataset.label; };
        let chart = null;

        function draw(data, adjust) {
            if (typeof Chart === 'undefined') return null;
            if (!chart) {
                const node = typeof canvas === 'string' ? document.getElementById(canvas) : canvas;
                chart = new Chart(node, {
                    type: spec.type || 'line',
                    data: {datasets: []},
                    options: merge(SHARED, spec.options),
                    plugins: spec.plugins || [],
                });
            }
            if (data.labels !== undefined) chart.data.labels = data.labels;
            const current = chart.data.datasets;
            const kept = (data.datasets || []).map(function (dataset) {
                const existing = current.find(function (d) { return key(d) === key(dataset); });
                return existing ? Object.assign(existing, dataset) : dataset;
            });
            current.splice.apply(current, [0, current.length].concat(kept));
            if (adjust) adjust(chart.options, chart);
            chart.update('none');
            return chart;
        }

        return {draw: draw, instance: function () { return chart; }};
    };

    /** merge(base, extra): chart options, nested; extra's values win (objects merge, arrays and functions replace). */
    DIGITS.chart.merge = merge;

    /** The i-th color of the palette series are drawn in. */
    DIGITS.chart.color = function (i) {
        return PALETTE[i % PALETTE.length];
    };

    /**
     * Options of a line chart over the epochs of training, points given as {x, y}: the epoch on a linear
     * axis from 0, `yTitle` on the other, metric-style numbers in the ticks and the tooltip.
     * extra is merged over them.
     */
    DIGITS.chart.overEpochs = function (yTitle, extra) {
        return merge({
            parsing: false,
            normalized: true,
            interaction: {mode: 'nearest', axis: 'x', intersect: false},
            plugins: {
                legend: {position: 'top', labels: {boxWidth: 12, usePointStyle: true}},
                tooltip: {callbacks: {
                    title: function (items) { return items.length ? 'epoch ' + DIGITS.formatEpoch(items[0].parsed.x) : ''; },
                    label: function (item) { return item.dataset.label + ': ' + DIGITS.formatMetric(item.parsed.y); },
                }},
            },
            scales: {
                x: {type: 'linear', min: 0, title: {display: true, text: 'epoch'}},
                y: {title: {display: true, text: yTitle}, ticks: {callback: function (v) { return DIGITS.formatMetric(v); }}},
            },
        }, extra);
    };

    /**
     * A plugin that draws an epoch as a dashed vertical line with a label (Chart.js has no annotations built
     * in). Its options, under options.plugins.epochMarker: {epoch (null: none), label, color}.
     */
    DIGITS.chart.epochMarker = {
        id: 'epochMarker',
        afterDatasetsDraw: function (chart, args, options) {
            const epoch = options && options.epoch;
            const x = chart.scales.x;
            if (epoch == null || !x || epoch < x.min || epoch > x.max) return;
            const px = x.getPixelForValue(epoch);
            const area = chart.chartArea;
            const ctx = chart.ctx;
            const color = options.color || '#198754';
            ctx.save();
            ctx.strokeStyle = color;
            ctx.lineWidth = 1.5;
            ctx.setLineDash([6, 4]);
            ctx.beginPath();
            ctx.moveTo(px, area.top);
            ctx.lineTo(px, area.bottom);
            ctx.stroke();
            if (options.label) {
                ctx.setLineDash([]);
                ctx.fillStyle = color;
                ctx.font = '600 11px system-ui, sans-serif';
                const width = ctx.measureText(options.label).width;
                const left = px + 4 + width > area.right ? px - 4 - width : px + 4;
                ctx.fillText(options.label, left, area.top + 12);
            }
            ctx.restore();
        },
    };
})(window.DIGITS);
