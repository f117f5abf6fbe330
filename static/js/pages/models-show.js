/* The model page (templates/models/show.html): progress, curves, log and panels drawn from the model's JSON, kept live by DIGITS.jobPage. */
(function () {
    'use strict';
    const el = DIGITS.el;
    const DATA = DIGITS.pageData();
    const CAN_EDIT = DATA.can_edit;
    const HOME_URL = DATA.home_url;
    const Y_AXIS_WIDTH = 64;   // both charts: their epoch axes line up
    let job = DATA.job;
    const JOB_ID = job.id;
    const modelUrl = DIGITS.url('/models/' + encodeURIComponent(JOB_ID));
    let tracebackOpen = false;         // the user opened the traceback: keep it open across renders
    const byId = function (id) { return document.getElementById(id); };

    function keyTitle(key) {
        const words = String(key).replace(/_/g, ' ');
        return words.charAt(0).toUpperCase() + words.slice(1);
    }
    function trainTask() { return (job.tasks || [])[0] || null; }
    function totalEpochs() {
        const n = parseFloat((job.solver || {}).train_epochs);
        return isFinite(n) && n > 0 ? n : null;
    }

    /* ---------- rendering: everything comes from `job` ---------- */

    function renderHeader() {
        byId('interrupted-resume-hint').classList.toggle('d-none', !(job.can_resume && CAN_EDIT));
    }

    function finished() { return ['Done', 'Error', 'Aborted'].indexOf(job.status) >= 0; }

    function lastEpoch() {
        const metrics = job.metrics || [];
        return metrics.length ? metrics[metrics.length - 1].epoch : null;
    }

    function renderProgress() {
        const task = trainTask() || {status: job.status, progress: job.progress, name: 'Train'};
        byId('task-name').textContent = task.name || 'Train';
        byId('task-status').replaceChildren(DIGITS.statusBadge(task.status));
        const node = (task.assigned || {}).node_name;  // set when it runs on a cluster node
        byId('task-node').classList.toggle('d-none', !node);
        byId('task-node').textContent = node ? 'on node ' + node : '';
        const running = task.status === 'Running';
        byId('task-timing').textContent = DIGITS.taskTiming(task);
        const logLink = byId('task-log-link');
        logLink.classList.toggle('d-none', !(task.started && task.id));
        if (task.id) logLink.href = DIGITS.url('/jobs/' + encodeURIComponent(JOB_ID) + '/log/' + encodeURIComponent(task.id));

        byId('task-progress').replaceChildren(DIGITS.progressBar(task.progress, {
            animated: running, barClass: task.status === 'Error' ? 'bg-danger'
                : task.status === 'Aborted' ? 'bg-warning' : task.status === 'Done' ? 'bg-success' : '',
        }));
        const epoch = lastEpoch();
        const total = totalEpochs();
        byId('task-epoch').textContent = epoch != null
            ? 'Epoch ' + DIGITS.formatEpoch(epoch) + (total ? ' of ' + DIGITS.formatEpoch(total) : '')
            : (total ? DIGITS.formatEpoch(total) + ' epochs to train' : '');

        const waiting = byId('task-waiting');
        const isWaiting = !!task.waiting_for && !finished();
        // Before the first step the tool says what it does; until its first word, it is loading TensorFlow.
        const starting = running && !(task.progress > 0);
        waiting.classList.toggle('d-none', !(isWaiting || starting));
        waiting.textContent = isWaiting ? DIGITS.waitingText(task)
            : starting ? (job.status_message || 'Starting TensorFlow') + '\u2026' : '';

        const error = job.error || task.error || null;
        byId('job-error').classList.toggle('d-none', !error);
        if (!error) return;
        byId('job-error-message').textContent = error.message || 'Training failed.';
        const hasLine = error.user_line != null && error.user_line !== '';
        byId('job-error-user-line').classList.toggle('d-none', !hasLine);
        if (hasLine) {
            byId('job-error-line-number').textContent = error.user_line;
            byId('job-error-source').replaceChildren(
                el('span', {className: 'line-number'}, String(error.user_line)),
                error.user_source_line != null ? String(error.user_source_line) : '');
        }
        const details = byId('job-error-details');
        details.classList.toggle('d-none', !error.traceback);
        byId('job-error-traceback').textContent = error.traceback || '';
        details.open = tracebackOpen;
    }
    byId('job-error-details').addEventListener('toggle', function (event) {
        tracebackOpen = event.target.open;
    });

    /* ---------- charts (created once, then updated in place: DIGITS.chart) ---------- */

    const seriesColors = {};

    function colorOf(name) {
        if (!seriesColors[name]) seriesColors[name] = DIGITS.chart.color(Object.keys(seriesColors).length);
        return seriesColors[name];
    }

    function isAccuracy(name) { return name.indexOf('accuracy') >= 0; }

    /* metrics entries -> ordered [{label, stage, points}]: train series first, then val, in order of appearance. */
    function metricSeries() {
        const series = new Map();
        ['train', 'val'].forEach(function (stage) {
            (job.metrics || []).forEach(function (entry) {
                const values = entry[stage];
                if (!values || typeof values !== 'object') return;
                Object.keys(values).forEach(function (name) {
                    const value = values[name];
                    if (value == null || !isFinite(value)) return;
                    const label = name + ' (' + stage + ')';
                    if (!series.has(label)) series.set(label, {label: label, name: name, stage: stage, points: []});
                    const percent = isAccuracy(name);
                    series.get(label).points.push({x: entry.epoch, y: percent ? value * 100 : value});
                });
            });
        });
        return Array.from(series.values());
    }

    function lrPoints() {
        return (job.metrics || []).filter(function (entry) {
            return entry.lr != null && isFinite(entry.lr);
        }).map(function (entry) { return {x: entry.epoch, y: entry.lr}; });
    }

    /* Both charts: the best epoch marked, the y axes as wide (their epochs line up), accuracy in % on y1. */
    function epochOptions(yTitle, extra) {
        return DIGITS.chart.merge(DIGITS.chart.overEpochs(yTitle, {
            plugins: {
                tooltip: {callbacks: {
                    label: function (item) {
                        const percent = item.dataset.yAxisID === 'y1';
                        return item.dataset.label + ': ' + (percent ? item.parsed.y.toFixed(2) + '%' : DIGITS.formatMetric(item.parsed.y));
                    },
                }},
                epochMarker: {epoch: null, label: 'best', color: '#198754'},
            },
            scales: {y: {afterFit: function (scale) { scale.width = Y_AXIS_WIDTH; }}},
        }), extra);
    }

    const trainingChart = DIGITS.chart('training-chart', {
        options: epochOptions('loss', {scales: {
            y1: {
                position: 'right', min: 0, max: 100, display: 'auto',
                title: {display: true, text: 'accuracy (%)'},
                grid: {drawOnChartArea: false},
                ticks: {callback: function (v) { return v + '%'; }},
            },
        }}),
        plugins: [DIGITS.chart.epochMarker],
    });
    const lrChart = DIGITS.chart('lr-chart', {
        options: epochOptions('learning rate', {plugins: {legend: {display: false}}, scales: {y: {beginAtZero: true}}}),
        plugins: [DIGITS.chart.epochMarker],
    });

    function datasetFor(series) {
        const percent = isAccuracy(series.name);
        const val = series.stage === 'val';
        const color = colorOf(series.label);
        return {
            label: series.label,
            data: series.points,
            yAxisID: percent ? 'y1' : 'y',
            borderColor: color,
            backgroundColor: color,
            borderWidth: val ? 2 : 1.5,
            borderDash: percent ? [5, 3] : [],
            pointRadius: val ? 2.5 : 0,
            pointHoverRadius: 4,
            tension: 0,
            fill: false,
        };
    }

    function renderCharts() {
        const series = metricSeries();
        const lr = lrPoints();
        const total = totalEpochs();
        const best = job.best_epoch != null ? job.best_epoch : null;
        const noMetrics = byId('metrics-empty');
        noMetrics.classList.toggle('d-none', series.length > 0 || lr.length > 0);
        noMetrics.textContent = finished() ? 'No metrics: training ended before it reported any.'
            : 'No metrics yet: they appear as training runs.';
        // Nothing to look at in TensorBoard before the first metrics.
        const tensorboard = byId('tensorboard-button');
        if (tensorboard) {
            tensorboard.disabled = series.length === 0 && lr.length === 0;
            tensorboard.title = tensorboard.disabled ? 'Nothing to show yet: no metrics were recorded' : "TensorBoard on this job's tb/ folder";
        }
        byId('training-chart').parentNode.classList.toggle('d-none', series.length === 0);
        byId('lr-chart').parentNode.classList.toggle('d-none', lr.length === 0);
        const early = job.early_stopping || {};
        let note = best != null ? 'Best epoch: ' + DIGITS.formatEpoch(best) : '';
        if (best != null && early.metric && early.best_value != null) note += ' (' + early.metric + ' ' + Number(early.best_value).toPrecision(4) + ')';
        if (early.stopped_early) note += ' \u00b7 stopped early: no better ' + early.metric + ' in ' + early.patience + ' validations';
        byId('best-epoch-note').textContent = note;

        function mark(options) {
            // The axis ends at the last epoch (15 of 15), not at the next round number Chart.js would pick.
            options.scales.x.max = Math.max(total || 0, lastEpoch() || 0) || undefined;
            options.plugins.epochMarker.epoch = best;
        }
        if (series.length) trainingChart.draw({datasets: series.map(datasetFor)}, mark);
        if (lr.length) {
            lrChart.draw({datasets: [{label: 'lr', data: lr, borderColor: '#6f42c1', backgroundColor: '#6f42c1',
                                      borderWidth: 1.5, pointRadius: 0, tension: 0, stepped: false, fill: false}]},
                         function (options) {
                mark(options);
                // Leave room where the training chart has its accuracy axis, so the epochs line up.
                const training = trainingChart.instance();
                const right = training && training.scales.y1 && training.scales.y1.width;
                options.layout = {padding: {right: right || 0}};
            });
        }
    }

    /* ---------- side panels ---------- */

    function renderInfo() {
        const dataset = job.dataset;
        byId('job-dataset').replaceChildren(dataset
            ? el('a', {href: dataset.url || DIGITS.url('/datasets/' + encodeURIComponent(dataset.id)), id: 'job-dataset-link'}, dataset.name)
            : '\u2014');

        byId('job-framework').textContent = job.framework || '\u2014';
        const network = job.network || {};
        byId('job-network').replaceChildren(el('span', null, [
            el('span', {id: 'job-network-name'}, network.name || '\u2014'),
            network.method && network.method !== 'standard' && network.method !== network.name
                ? el('span', {className: 'text-muted'}, ' (' + network.method + ')') : null,
            network.source_url ? el('a', {href: network.source_url, className: 'ms-2', target: '_blank', rel: 'noopener',
                                          id: 'job-network-source'}, 'source') : null,
        ]));

        const solver = job.solver || {};
        const solverBox = byId('job-solver');
        const keys = Object.keys(solver).filter(function (k) { return solver[k] != null && solver[k] !== ''; });
        solverBox.replaceChildren.apply(solverBox, keys.length ? [].concat.apply([], keys.map(function (key) {
            const value = solver[key];
            return [
                el('dt', {className: 'col-7 fw-normal text-secondary'}, keyTitle(key)),
                el('dd', {className: 'col-5 mb-0', dataset: {key: key}},
                   typeof value === 'object' ? JSON.stringify(value) : String(value)),
            ];
        })) : [el('dd', {className: 'col-12 mb-0'}, '\u2014')]);

    }

    function meter(fraction, barClass) {
        return DIGITS.progressBar(fraction, {className: 'hardware-meter flex-grow-1', label: false, barClass: barClass});
    }

    // The last reading taken while training ran: kept, marked as such, once it ends.
    let lastHardware = null;

    function renderHardware() {
        const box = byId('hardware');
        const live = !!job.hardware;
        if (live) lastHardware = {reading: job.hardware, at: Date.now()};
        const hw = live ? job.hardware : lastHardware && lastHardware.reading;
        if (!hw) {
            box.replaceChildren(el('span', {className: 'text-muted', id: 'hardware-none',
                                            title: 'Shown while the training runs'}, '\u2014'));
            return;
        }
        const parts = [];
        const node = ((job.tasks[0] || {}).assigned || {}).node_name;  // set when it runs on a cluster node
        if (node) parts.push(el('div', {className: 'text-muted mb-2', id: 'hardware-node'}, 'On cluster node ' + node));
        if (!live) {
            parts.push(el('div', {className: 'text-muted fst-italic mb-2', id: 'hardware-last'},
                'Last reading, ' + DIGITS.formatTime(lastHardware.at / 1000) + ', before training ended'));
        }
        (hw.gpus || []).forEach(function (gpu) {
            const memFraction = gpu.memory_total ? gpu.memory_used / gpu.memory_total : 0;
            parts.push(el('div', {className: 'mb-2 hardware-gpu', dataset: {index: gpu.index}}, [
                el('div', {className: 'fw-semibold'}, [
                    'GPU #' + gpu.index + ' ', el('span', {className: 'fw-normal text-muted'}, gpu.name || ''),
                    gpu.temperature != null ? el('span', {className: 'float-end fw-normal'}, gpu.temperature + ' \u00b0C') : null,
                ]),
                el('div', {className: 'd-flex align-items-center gap-2'}, [
                    el('span', {className: 'text-muted', style: {width: '5.5rem'}}, 'Utilization'),
                    meter((gpu.utilization || 0) / 100),
                    el('span', {className: 'text-end', style: {width: '7.5rem'}}, (gpu.utilization != null ? gpu.utilization : '?') + '%'),
                ]),
                el('div', {className: 'd-flex align-items-center gap-2'}, [
                    el('span', {className: 'text-muted', style: {width: '5.5rem'}}, 'Memory'),
                    meter(memFraction, memFraction > 0.9 ? 'bg-danger' : 'bg-info'),
                    el('span', {className: 'text-end text-nowrap', style: {width: '7.5rem'}},
                       DIGITS.formatBytes(gpu.memory_used) + ' / ' + DIGITS.formatBytes(gpu.memory_total)),
                ]),
            ]));
        });
        if (!(hw.gpus || []).length) parts.push(el('div', {className: 'text-muted mb-2'}, 'No GPU: training on the CPU.'));
        const proc = hw.process;
        parts.push(el('div', {className: 'hardware-process'}, proc ? [
            el('span', {className: 'fw-semibold'}, 'Process '),
            'CPU ' + (proc.cpu_percent != null ? Math.round(proc.cpu_percent) + '%' : '?'),
            ' \u00b7 memory ' + (proc.memory_rss != null ? DIGITS.formatBytes(proc.memory_rss) : '?'),
        ] : el('span', {className: 'text-muted'}, 'Process: \u2014')));
        box.replaceChildren.apply(box, parts);
    }

    function renderSnapshots() {
        const files = job.snapshot_files || [];
        byId('snapshot-count').textContent = files.length;
        const tbody = byId('snapshot-table').tBodies[0];
        const scroller = byId('snapshot-scroll');
        const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 8;
        tbody.replaceChildren.apply(tbody, files.length ? files.map(function (snap) {
            const best = job.best_epoch != null && Number(snap.epoch) === Number(job.best_epoch);
            return el('tr', {className: 'snapshot' + (best ? ' table-success' : ''), dataset: {snapshotEpoch: snap.epoch}}, [
                el('td', {className: 'text-end text-nowrap'}, [
                    best ? el('span', {className: 'badge text-bg-success me-1'}, 'best') : null,
                    DIGITS.formatEpoch(snap.epoch),
                ]),
                el('td', null, el('code', {className: 'small', title: snap.path}, snap.path)),
                el('td', {className: 'text-end text-nowrap'}, snap.size != null ? DIGITS.formatBytes(snap.size) : ''),
            ]);
        }) : [el('tr', null, el('td', {colspan: 3, className: 'text-muted'},
                                  finished() ? 'No snapshot was saved.' : 'No snapshot yet.'))]);
        const download = byId('download-button');
        if (download) {
            download.disabled = files.length === 0 && finished();
            download.title = download.disabled ? 'Nothing to download: training saved no snapshot' : '';
        }
        if (atBottom) scroller.scrollTop = scroller.scrollHeight;   // newest last: follow them
        DIGITS.useModelSnapshots(files.map(function (snap) { return snap.epoch; }));
    }

    let lastLog = null;
    function renderLog() {
        const pre = byId('log-tail');
        const text = job.log_tail || '';
        if (text === lastLog) return;
        lastLog = text;
        // Follow the log unless the reader scrolled up to read something.
        const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 8;
        pre.textContent = text || 'Nothing logged yet.';
        pre.classList.toggle('text-secondary', !text);
        if (atBottom || !pre.dataset.scrolled) pre.scrollTop = pre.scrollHeight;
    }
    byId('log-tail').addEventListener('scroll', function () { this.dataset.scrolled = '1'; });

    function render(data) {
        job = data;
        page.renderCommon(job);
        renderHeader();
        renderProgress();
        renderCharts();
        renderInfo();
        renderHardware();
        renderSnapshots();
        renderLog();
    }

    const page = DIGITS.jobPage({
        jobId: JOB_ID, kind: 'model', canEdit: CAN_EDIT, homeUrl: HOME_URL,
        jsonUrl: modelUrl + '.json', resumeUrl: modelUrl + '/resume', pollSeconds: 3,
        getJob: function () { return job; }, render: render,
    });

    render(job);
})();
