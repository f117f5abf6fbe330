/* Classify Many's predictions (templates/models/inference_results.html): a page of rows at a time, only the
   mistakes, sorted by confidence, or only the images of one confusion-matrix cell. The rows are in the page;
   this script only orders and hides them. */
(function () {
    'use strict';
    const PAGE = 100;
    const byId = function (id) { return document.getElementById(id); };
    const body = byId('classifications').tBodies[0];
    const rows = Array.from(body.rows);
    const mistakes = byId('only-mistakes');
    const sort = byId('sort-by');
    let cell = null;  // {truth, predicted} of the clicked confusion-matrix cell
    let first = 0;

    function matching() {
        const chosen = rows.filter(function (row) {
            if (mistakes && mistakes.checked && row.dataset.mistake !== 'yes') return false;
            return !cell || (row.dataset.truth === cell.truth && row.dataset.predicted === cell.predicted);
        });
        const order = sort.value;
        chosen.sort(function (a, b) {
            if (order === 'list') return a.dataset.order - b.dataset.order;
            const difference = a.dataset.confidence - b.dataset.confidence;
            return order === 'confidence-asc' ? difference : -difference;
        });
        return chosen;
    }

    function render() {
        const chosen = matching();
        first = Math.min(first, Math.max(0, chosen.length - 1));
        first -= first % PAGE;
        const shown = new Set(chosen.slice(first, first + PAGE));
        rows.forEach(function (row) { row.hidden = !shown.has(row); });
        body.append.apply(body, chosen);  // the chosen order; hidden rows keep their place after them
        byId('rows-shown').textContent = chosen.length
            ? 'Showing ' + (first + 1) + '–' + Math.min(first + PAGE, chosen.length) + ' of ' + chosen.length
            : '';
        byId('rows-none').classList.toggle('d-none', chosen.length > 0);
        byId('rows-previous').disabled = first === 0;
        byId('rows-next').disabled = first + PAGE >= chosen.length;
        byId('cell-filter').classList.toggle('d-none', !cell);
        byId('cell-filter-text').textContent = cell ? 'true ' + cell.truth + ', predicted ' + cell.predicted : '';
        document.querySelectorAll('.matrix-cell').forEach(function (td) {
            td.classList.toggle('border-primary', !!cell && td.dataset.truth === cell.truth && td.dataset.predicted === cell.predicted);
            td.classList.toggle('border-3', !!cell && td.dataset.truth === cell.truth && td.dataset.predicted === cell.predicted);
        });
    }

    function restart() { first = 0; render(); }
    if (mistakes) mistakes.addEventListener('change', restart);
    sort.addEventListener('change', restart);
    byId('rows-previous').addEventListener('click', function () { first = Math.max(0, first - PAGE); render(); });
    byId('rows-next').addEventListener('click', function () { first += PAGE; render(); });
    byId('cell-filter-clear').addEventListener('click', function () { cell = null; restart(); });
    document.querySelectorAll('.matrix-cell').forEach(function (td) {
        td.addEventListener('click', function () {
            cell = {truth: td.dataset.truth, predicted: td.dataset.predicted};
            if (mistakes) mistakes.checked = false;
            restart();
            byId('predictions-card').scrollIntoView({behavior: 'smooth', block: 'start'});
        });
    });
    render();
})();
