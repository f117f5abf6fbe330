/* An inference job (templates/models/inference_job.html): its progress, live from its room; reloads when done. */
(function () {
    'use strict';
    let data = DIGITS.pageData().data;
    const byId = function (id) { return document.getElementById(id); };
    function render() {
        byId('inference-status').replaceChildren(DIGITS.statusBadge(data.status));
        byId('inference-progress').replaceChildren(DIGITS.progressBar(data.progress, {animated: data.status === 'Running'}));
        byId('inference-eta').textContent = data.status === 'Running' && data.eta ? DIGITS.formatEta(data.eta) : '';
        const error = byId('inference-error');
        error.classList.toggle('d-none', !data.error);
        error.textContent = data.error ? data.error.message : '';
    }
    render();
    // Follow the job over its Socket.IO room; when it is done, the page reloads to show the results.
    if (['Done', 'Error', 'Aborted'].indexOf(data.status) < 0) {
        const socket = DIGITS.join(data.id);
        socket.on('job_update', function (summary) {
            if (summary.id !== data.id) return;
            if (summary.status === 'Done') { window.location.reload(); return; }
            data.status = summary.status;
            fetch(DIGITS.url('/inference/' + encodeURIComponent(data.id) + '.json'))
                .then(function (r) { return r.json(); }).then(function (d) { data = d; render(); });
        });
        socket.on('task_update', function (update) {
            if (update.job_id !== data.id) return;
            data.progress = update.task.progress;
            data.eta = update.task.eta;
            render();
        });
    }
})();
