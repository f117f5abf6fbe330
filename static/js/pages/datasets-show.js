/* The dataset page (templates/datasets/show.html): everything drawn from the dataset's JSON, kept live by DIGITS.jobPage. */
(function () {
    'use strict';
    const el = DIGITS.el;
    const DATA = DIGITS.pageData();
    const CAN_EDIT = DATA.can_edit;
    const HOME_URL = DATA.home_url;
    const STAGE_COLORS = {train: '#0d6efd', val: '#fd7e14', test: '#198754'};
    const STAGE_TITLES = {train: 'Training', val: 'Validation', test: 'Test'};
    let job = DATA.job;
    const SKIPPED_PAGE = new URLSearchParams(window.location.search).get('skipped_page');
    const JOB_ID = job.id;
    const chart = DIGITS.chart('distribution-chart', {
        type: 'bar',
        options: {
            interaction: {mode: 'index', intersect: false},
            plugins: {legend: {position: 'top'}},
            scales: {
                x: {ticks: {autoSkip: true, maxRotation: 60}},
                y: {beginAtZero: true, title: {display: true, text: 'images'}},
            },
        },
    });
    let chartKey = '';
    const openTracebacks = new Set(); // task ids whose traceback the user opened
    const byId = function (id) { return document.getElementById(id); };

    function stageTitle(stage) { return STAGE_TITLES[stage] || stage; }
    function stagesOf(obj) {
        // Known stages in their usual order, then anything else.
        const keys = Object.keys(obj || {});
        const order = ['train', 'val', 'test'];
        return order.filter(function (s) { return keys.indexOf(s) >= 0; })
            .concat(keys.filter(function (s) { return order.indexOf(s) < 0; }));
    }
    // Distribution keys may be class names or label indices.
    function className(key) {
        const labels = job.labels || [];
        if (labels.indexOf(key) >= 0) return key;
        if (/^\d+$/.test(String(key)) && labels[Number(key)] !== undefined) return labels[Number(key)];
        return String(key);
    }

    /* ---------- rendering: everything comes from `job` ---------- */

    function renderHeader() {
        const error = byId('job-error');
        error.classList.toggle('d-none', !job.error);
        if (job.error) {
            error.replaceChildren(el('strong', null, 'Error: '), job.error.message || 'The job failed.');
        }
    }

    function renderInfo() {
        const dims = job.image_dimensions;
        byId('job-dimensions').textContent = dims
            ? dims[1] + ' \u00d7 ' + dims[0] + ' (width \u00d7 height), ' + (dims[2] === 1 ? 'grayscale' : dims[2] === 3 ? 'color' : dims[2] + ' channels')
            : '\u2014';
        if (dims && job.feature_dtype && job.feature_dtype !== 'uint8') byId('job-dimensions').textContent += ', ' + job.feature_dtype;
        byId('job-encoding').textContent = job.encoding || '\u2014';
        renderExtension();
        byId('job-resize-mode').textContent = job.resize_mode || '\u2014';
        const labels = job.labels || [];
        byId('job-classes').textContent = labels.length
            ? labels.length + ': ' + labels.slice(0, 12).join(', ') + (labels.length > 12 ? ', \u2026' : '')
            : '\u2014';
    }

    // Generic datasets (made by a data extension, or prebuilt): which extension, and what their labels are.
    function renderExtension() {
        document.querySelectorAll('.extension-only').forEach(function (node) { node.classList.toggle('d-none', !job.extension_id); });
        document.querySelectorAll('.generic-only').forEach(function (node) { node.classList.toggle('d-none', !job.label_kind); });
        if (!job.label_kind) return;
        byId('job-extension').textContent = (job.extension_title || job.extension_id) + ' (' + job.extension_id + ')';
        const dims = job.label_dims || [];
        const kinds = {
            'class': 'an integer (class index)',
            'values': dims[0] + ' value(s) per sample',
            'array': 'an array ' + dims[1] + ' \u00d7 ' + dims[0] + ' \u00d7 ' + dims[2] + ' (width \u00d7 height \u00d7 channels), ' + job.label_dtype,
            'none': 'none',
        };
        byId('job-label-kind').textContent = kinds[job.label_kind] || '\u2014';
        const records = byId('job-records');
        records.replaceChildren.apply(records, stagesOf(job.db_paths).map(function (stage) {
            return el('a', {className: 'me-2 records-link', dataset: {stage: stage},
                            href: DIGITS.url('/datasets/' + encodeURIComponent(JOB_ID) + '/records?db=' + stage)}, stageTitle(stage));
        }));
    }

    function taskItem(task) {
        const active = task.status === 'Running';
        const node = (task.assigned || {}).node_name;  // set when it runs on a cluster node
        const head = el('div', {className: 'd-flex align-items-center gap-2'}, [
            el('span', {className: 'fw-semibold'}, task.name),
            DIGITS.statusBadge(task.status),
            node ? el('span', {className: 'small text-muted task-node', title: 'The cluster node it runs (or ran) on'},
                      'on node ' + node) : null,
            el('span', {className: 'ms-auto small text-muted task-timing'}, DIGITS.taskTiming(task)),
            task.started ? el('a', {
                className: 'small', href: DIGITS.url('/jobs/' + encodeURIComponent(JOB_ID) + '/log/' + encodeURIComponent(task.id)),
                target: '_blank', rel: 'noopener',
            }, 'log') : null,
        ]);
        const parts = [head];
        if (active || (task.progress > 0 && task.status !== 'Done')) {
            parts.push(DIGITS.progressBar(task.progress, {className: 'mt-1', animated: active}));
        }
        if (task.waiting_for && task.status !== 'Done') {
            parts.push(el('div', {className: 'small text-muted mt-1 task-waiting'}, DIGITS.waitingText(task)));
        }
        if (task.error) {
            parts.push(el('div', {className: 'text-danger small mt-1 task-error'}, task.error.message || 'Error'));
            if (task.error.traceback) {
                const details = el('details', {className: 'mt-1'}, [
                    el('summary', {className: 'small'}, 'Traceback'),
                    el('pre', {className: 'traceback mb-0 mt-1'}, task.error.traceback),
                ]);
                details.open = openTracebacks.has(task.id);
                details.addEventListener('toggle', function () {
                    if (details.open) openTracebacks.add(task.id); else openTracebacks.delete(task.id);
                });
                parts.push(details);
            }
        }
        return el('li', {className: 'list-group-item task', dataset: {taskId: task.id}}, parts);
    }

    function renderTasks() {
        const list = byId('task-list');
        const tasks = job.tasks || [];
        list.replaceChildren.apply(list, tasks.length ? tasks.map(taskItem)
            : [el('li', {className: 'list-group-item text-muted small'}, 'No tasks.')]);
    }

    function renderEntries() {
        const tbody = byId('entries-table').tBodies[0];
        const stages = stagesOf(Object.assign({}, job.distribution, job.entries, job.explore_urls));
        const skippedCounts = job.skipped_counts || {};
        tbody.replaceChildren.apply(tbody, stages.length ? stages.map(function (stage) {
            const skipped = Object.values(skippedCounts[stage] || {}).reduce(function (a, b) { return a + b; }, 0);
            const url = (job.explore_urls || {})[stage];
            return el('tr', {dataset: {stage: stage}}, [
                el('td', null, stageTitle(stage)),
                el('td', {className: 'text-end entries'}, job.entries && job.entries[stage] != null ? DIGITS.formatNumber(job.entries[stage]) : '\u2026'),
                el('td', {className: 'text-end' + (skipped ? ' text-warning-emphasis fw-semibold' : ' text-muted')}, String(skipped)),
                el('td', {className: 'text-end'}, url ? el('a', {href: url, className: 'btn btn-sm btn-outline-primary py-0 explore-link'}, 'Explore') : null),
            ]);
        }) : [el('tr', null, el('td', {colspan: 4, className: 'text-muted small'}, 'No databases yet.'))]);

        const box = byId('mean-image-box');
        if (job.mean_image_url) {
            const current = box.querySelector('img');
            if (!current || current.dataset.src !== job.mean_image_url) {
                const dims = job.image_dimensions;
                const small = dims && Math.max(dims[0], dims[1]) < 128;
                box.replaceChildren(el('img', {
                    src: job.mean_image_url, alt: 'Mean image of the training set',
                    className: 'mean-image' + (small ? ' pixelated' : ''), dataset: {src: job.mean_image_url},
                    id: 'mean-image',
                }));
            }
        } else {
            const building = ['Done', 'Error', 'Aborted'].indexOf(job.status) < 0;
            box.replaceChildren(el('span', {className: 'text-muted small', id: 'mean-image-none'}, building
                ? 'Not computed yet: it is made with the training database.' : 'This dataset has no mean image.'));
        }
    }

    function renderChart() {
        const distribution = job.distribution || {};
        const stages = stagesOf(distribution);
        const names = (job.labels || []).slice();
        stages.forEach(function (stage) {
            Object.keys(distribution[stage] || {}).forEach(function (key) {
                const name = className(key);
                if (names.indexOf(name) < 0) names.push(name);
            });
        });
        const datasets = stages.map(function (stage) {
            const counts = {};
            Object.keys(distribution[stage] || {}).forEach(function (key) { counts[className(key)] = distribution[stage][key]; });
            return {
                label: stageTitle(stage),
                data: names.map(function (n) { return counts[n] || 0; }),
                backgroundColor: STAGE_COLORS[stage] || '#6c757d',
            };
        });
        const empty = !stages.length || !names.length;
        byId('distribution-empty').classList.toggle('d-none', !empty);
        byId('distribution-chart').parentNode.classList.toggle('d-none', empty);
        const key = JSON.stringify([names, datasets]);
        if (empty || key === chartKey) return;
        chartKey = key;
        chart.draw({labels: names, datasets: datasets});
    }

    function renderProblems() {
        const dropped = job.dropped_classes || [];
        const skipped = job.skipped || [];
        const counts = job.skipped_counts || {};
        const countRows = [];
        stagesOf(counts).forEach(function (stage) {
            Object.keys(counts[stage] || {}).forEach(function (key) {
                if (counts[stage][key]) countRows.push([stage, className(key), counts[stage][key]]);
            });
        });
        byId('problems-section').classList.toggle('d-none', !(dropped.length || skipped.length || countRows.length));
        byId('dropped-box').classList.toggle('d-none', !dropped.length);
        byId('skipped-counts-box').classList.toggle('d-none', !countRows.length);
        byId('skipped-box').classList.toggle('d-none', !skipped.length);

        const droppedBody = byId('dropped-table').tBodies[0];
        droppedBody.replaceChildren.apply(droppedBody, dropped.map(function (d) {
            return el('tr', null, [el('td', null, d.name), el('td', {className: 'text-end'}, String(d.count)), el('td', null, d.reason)]);
        }));
        const countsBody = byId('skipped-counts-table').tBodies[0];
        countsBody.replaceChildren.apply(countsBody, countRows.map(function (r) {
            return el('tr', null, [el('td', null, stageTitle(r[0])), el('td', null, r[1]), el('td', {className: 'text-end'}, String(r[2]))]);
        }));
        // The JSON holds one page of the skipped images (a job may skip a million) and their total.
        const total = job.skipped_total != null ? job.skipped_total : skipped.length;
        byId('skipped-total').textContent = total;
        renderSkippedPager(total, skipped.length);
        const skippedBody = byId('skipped-table').tBodies[0];
        skippedBody.replaceChildren.apply(skippedBody, skipped.map(function (s) {
            return el('tr', null, [
                el('td', null, stageTitle(s.stage)),
                el('td', null, s.label != null ? className(s.label) : ''),
                el('td', null, el('code', {className: 'small'}, s.path)),
                el('td', null, s.reason),
            ]);
        }));
    }

    /* Data extensions that read label files (object detection) list the lines and files they left out. */
    function renderLabelProblems() {
        const problems = job.label_problems || [];
        byId('label-problems-section').classList.toggle('d-none', !problems.length);
        byId('label-problems-total').textContent = job.label_problems_total || problems.length;
        const body = byId('label-problems-table').tBodies[0];
        body.replaceChildren.apply(body, problems.map(function (p) {
            return el('tr', null, [
                el('td', null, stageTitle(p.stage)),
                el('td', null, el('code', {className: 'small'}, p.path)),
                el('td', {className: 'text-end'}, p.line != null ? String(p.line) : ''),
                el('td', null, p.reason),
            ]);
        }));
    }

    function renderSkippedPager(total, shown) {
        const pager = byId('skipped-pager');
        const size = job.skipped_page_size || shown || 1;
        const number = job.skipped_page || 1;
        const pages = Math.max(1, Math.ceil(total / size));
        pager.classList.toggle('d-none', total <= shown && number === 1);
        const first = total ? (number - 1) * size + 1 : 0;
        const link = function (to, text) {
            if (to < 1 || to > pages || to === number) return el('span', {className: 'text-muted mx-1'}, text);
            return el('a', {className: 'mx-1', href: '?skipped_page=' + to}, text);
        };
        pager.replaceChildren(
            'Showing ' + first + '\u2013' + Math.min(total, first + shown - 1) + ' of ' + total + ' \u00b7 page ' + number + ' of ' + pages + ' ',
            link(number - 1, '\u2039 previous'), link(number + 1, 'next \u203a'));
    }

    function render(data) {
        job = data;
        page.renderCommon(job);
        renderHeader();
        renderInfo();
        renderTasks();
        renderEntries();
        renderChart();
        renderProblems();
        renderLabelProblems();
    }

    const page = DIGITS.jobPage({
        jobId: JOB_ID, kind: 'dataset', canEdit: CAN_EDIT, homeUrl: HOME_URL,
        jsonUrl: DIGITS.url('/datasets/' + encodeURIComponent(JOB_ID) + '.json'
            + (SKIPPED_PAGE ? '?skipped_page=' + encodeURIComponent(SKIPPED_PAGE) : '')), resumeUrl: null,
        getJob: function () { return job; }, render: render,
    });

    render(job);
})();
