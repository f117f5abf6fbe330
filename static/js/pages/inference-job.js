/* An inference job (templates/models/inference_job.html): what it is doing and how far, live from its room;
   reloads when done. */
(function () {
    'use strict';
    let data = DIGITS.pageData().data;
    const byId = function (id) { return document.getElementById(id); };
    // What the job is doing, in words, from the first second: waiting, starting the tool, then its own account.
    function doing() {
        const images = data.count != null ? data.count + ' images' : 'the images';
        if (data.status === 'Initialized' || data.status === 'Waiting') return 'Waiting for its turn to classify ' + images + '.';
        if (data.status !== 'Running') return '';
        if (!data.doing) return 'Starting: loading TensorFlow and the model to classify ' + images + '…';
        if (data.doing === 'Classifying') return 'Classifying: ' + data.done + ' of ' + images + ' done.';
        return data.doing + ' (' + images + ')…';
    }
    function render() {
        byId('inference-status').replaceChildren(DIGITS.statusBadge(data.status));
        byId('inference-doing').textContent = doing();
        byId('inference-progress').replaceChildren(DIGITS.progressBar(data.progress, {animated: data.status === 'Running'}));
        byId('inference-eta').textContent = data.status === 'Running' && data.eta ? DIGITS.formatEta(data.eta) : '';
        const error = byId('inference-error');
        error.classList.toggle('d-none', !data.error);
        error.textContent = data.error ? data.error.message : '';
    }
    function refresh() {
        fetch(DIGITS.url('/inference/' + encodeURIComponent(data.id) + '.json'))
            .then(function (r) { return r.json(); }).then(function (d) { data = d; render(); });
    }
    render();
    // Follow the job over its Socket.IO room; when it is done, the page reloads to show the results.
    if (['Done', 'Error', 'Aborted'].indexOf(data.status) < 0) {
        const socket = DIGITS.join(data.id);
        socket.on('job_update', function (summary) {
            if (summary.id !== data.id) return;
            if (summary.status === 'Done') { window.location.reload(); return; }
            data.status = summary.status;
            refresh();
        });
        socket.on('task_update', function (update) {
            if (update.job_id !== data.id) return;
            data.progress = update.task.progress;
            data.eta = update.task.eta;
            if (data.count != null) data.done = Math.round(update.task.progress * data.count);
            // The phase (loading, classifying, writing) is in the job's JSON, not in the live update.
            if (!data.doing || data.doing !== 'Classifying' || update.task.progress >= 1) { refresh(); return; }
            render();
        });
    }
})();
