/* The pretrained model page (templates/pretrained/show.html): file sizes, and the header kept live by DIGITS.jobPage. */
(function () {
    'use strict';
    const DATA = DIGITS.pageData();
    let job = DATA.job;
    document.querySelectorAll('#pretrained-files .file-size').forEach(function (cell) {
        cell.textContent = DIGITS.formatBytes(Number(cell.dataset.bytes));
    });
    function render(data) {
        job = data;
        page.renderCommon(job);
    }
    const page = DIGITS.jobPage({
        jobId: job.id, kind: 'pretrained model', canEdit: DATA.can_edit, homeUrl: DATA.home_url,
        jsonUrl: DIGITS.url('/pretrained_models/' + encodeURIComponent(job.id) + '.json'),
        getJob: function () { return job; }, render: render,
    });
    render(job);
})();
