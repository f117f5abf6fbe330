/* Classify One (templates/models/classify_one.html): a histogram per layer array, from its data-histogram. */
(function () {
    'use strict';
    document.querySelectorAll('canvas.histogram').forEach(function (canvas) {
        const histogram = JSON.parse(canvas.dataset.histogram);
        const labels = histogram.counts.map(function (_, i) {
            return Number(histogram.edges[i]).toPrecision(2);
        });
        DIGITS.chart(canvas, {
            type: 'bar',
            options: {plugins: {legend: {display: false}},
                      scales: {x: {ticks: {maxTicksLimit: 4, font: {size: 9}}}, y: {ticks: {maxTicksLimit: 3, font: {size: 9}}}}},
        }).draw({labels: labels, datasets: [{data: histogram.counts, backgroundColor: '#0d6efd', barPercentage: 1, categoryPercentage: 1}]});
    });
})();
