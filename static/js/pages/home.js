/* The home page (templates/home.html): the job tables, kept live from the "home" room. */
(function () {
    'use strict';
    const el = DIGITS.el;
    // id -> summary, per table; the page's only state besides the UI.
    const jobs = {datasets: new Map(), models: new Map(), pretrained_models: new Map()};
    const collapsedGroups = new Set();
    const selected = new Set();
    const initial = DIGITS.pageData().jobs;

    function tableFor(summary) {
        if (summary.type === 'dataset') return 'datasets';
        if (summary.type === 'model') return 'models';
        if (summary.type === 'pretrained') return 'pretrained_models';
        return null;
    }

    function jobUrl(summary) {
        const pages = {dataset: '/datasets/', model: '/models/', pretrained: '/pretrained_models/'};
        return DIGITS.url((pages[summary.type] || '/jobs/') + encodeURIComponent(summary.id));
    }

    function jobRow(job, grouped) {
        const check = el('input', {
            type: 'checkbox', className: 'form-check-input job-check',
            'aria-label': 'Select ' + job.name, dataset: {id: job.id},
        });
        check.checked = selected.has(job.id);
        const status = el('td', {className: 'job-status'}, DIGITS.statusBadge(job.status));
        if (job.interrupted) {
            status.appendChild(document.createTextNode(' '));
            status.appendChild(el('span', {
                className: 'badge text-bg-light border text-warning-emphasis',
                title: 'The server stopped while this job ran',
            }, 'interrupted'));
        }
        const active = job.status === 'Running' || job.status === 'Waiting';
        const progress = el('td', {className: 'job-progress'},
            active ? DIGITS.progressBar(job.progress, {
                className: 'progress-thin', animated: job.status === 'Running', label: false,
                barClass: job.status === 'Waiting' ? 'bg-secondary' : '',
            }) : null);
        if (active) progress.title = Math.round((job.progress || 0) * 100) + '%';
        return el('tr', {className: 'job-row', id: 'job-' + job.id, dataset: {id: job.id, group: job.group || ''}}, [
            el('td', {className: 'col-check'}, check),
            el('td', {className: grouped ? 'ps-4' : ''},
                el('a', {href: jobUrl(job), className: 'job-name fw-semibold text-decoration-none'}, job.name)),
            el('td', {className: 'text-muted small'}, DIGITS.kindTitle(job.kind)),
            status,
            progress,
            el('td', {className: 'job-owner'}, job.username || ''),
            el('td', {className: 'job-created text-nowrap small', title: String(job.created)}, DIGITS.formatTime(job.created)),
        ]);
    }

    function groupRow(name, members) {
        const collapsed = collapsedGroups.has(name);
        const running = members.filter(function (j) { return j.status === 'Running' || j.status === 'Waiting'; }).length;
        return el('tr', {className: 'group-row', dataset: {group: name}, style: {cursor: 'pointer'},
                         onclick: function () {
                             if (collapsedGroups.has(name)) collapsedGroups.delete(name);
                             else collapsedGroups.add(name);
                             renderAll();
                         }}, [
            el('td', {className: 'col-check'}, collapsed ? '\u25B8' : '\u25BE'),
            el('td', {colspan: 6}, [
                name, ' ',
                el('span', {className: 'badge rounded-pill text-bg-secondary fw-normal'}, String(members.length)),
                running ? el('span', {className: 'ms-2 small fw-normal text-primary'}, running + ' active') : null,
            ]),
        ]);
    }

    function newestFirst(a, b) { return (b.created || 0) - (a.created || 0); }

    function render(key) {
        const table = document.getElementById(key + '-table');
        const tbody = table.tBodies[0];
        const list = Array.from(jobs[key].values()).sort(newestFirst);
        // Ungrouped jobs stand alone; a group is placed where its newest job would be.
        const entries = [];
        const groups = new Map();
        list.forEach(function (job) {
            if (!job.group) { entries.push({job: job}); return; }
            if (!groups.has(job.group)) {
                groups.set(job.group, []);
                entries.push({group: job.group});
            }
            groups.get(job.group).push(job);
        });
        const rows = [];
        entries.forEach(function (entry) {
            if (entry.job) { rows.push(jobRow(entry.job, false)); return; }
            const members = groups.get(entry.group);
            rows.push(groupRow(entry.group, members));
            if (!collapsedGroups.has(entry.group)) {
                members.forEach(function (job) { rows.push(jobRow(job, true)); });
            }
        });
        tbody.replaceChildren.apply(tbody, rows);
        document.getElementById(key + '-count').textContent = list.length;
        table.closest('.card').querySelector('.empty-note').classList.toggle('d-none', list.length > 0);
        table.querySelector('.select-all').checked = list.length > 0 && list.every(function (j) { return selected.has(j.id); });
    }

    function renderAll() {
        render('datasets');
        render('models');
        render('pretrained_models');
        updateSelectionButtons();
    }

    function updateSelectionButtons() {
        document.getElementById('abort-selected').disabled = selected.size === 0;
        document.getElementById('delete-selected').disabled = selected.size === 0;
        const models = selectedModels().length;
        document.getElementById('tensorboard-selected').disabled = models === 0;
        document.getElementById('compare-selected').disabled = models === 0;
    }

    function selectedModels() {
        return Array.from(selected).filter(function (id) { return jobs.models.has(id); });
    }

    function openForSelectedModels(path) {
        const query = selectedModels().map(function (id) { return 'job_id=' + encodeURIComponent(id); }).join('&');
        window.open(DIGITS.url(path + '?' + query), '_blank', 'noopener');
    }
    // Starting TensorBoard is a change: POSTed (with the CSRF token) from a form made for the click.
    function postForSelectedModels(path) {
        const inputs = selectedModels().map(function (id) { return el('input', {type: 'hidden', name: 'job_id', value: id}); });
        inputs.push(el('input', {type: 'hidden', name: 'csrf_token', value: DIGITS.csrfToken()}));
        const form = el('form', {method: 'post', action: DIGITS.url(path), target: '_blank', rel: 'noopener'}, inputs);
        document.body.appendChild(form);
        form.submit();
        form.remove();
    }
    document.getElementById('tensorboard-selected').addEventListener('click', function () { postForSelectedModels('/tensorboard'); });
    document.getElementById('compare-selected').addEventListener('click', function () { openForSelectedModels('/models/compare'); });

    function applyUpdate(summary) {
        if (!summary || !summary.id) return;
        if (summary.deleted) {
            jobs.datasets.delete(summary.id);
            jobs.models.delete(summary.id);
            jobs.pretrained_models.delete(summary.id);
            selected.delete(summary.id);
        } else {
            const key = tableFor(summary);
            if (!key) return;
            jobs[key].set(summary.id, Object.assign({}, jobs[key].get(summary.id) || {}, summary));
        }
        renderAll();
    }

    (initial.datasets || []).forEach(function (j) { jobs.datasets.set(j.id, j); });
    (initial.models || []).forEach(function (j) { jobs.models.set(j.id, j); });
    (initial.pretrained_models || []).forEach(function (j) { jobs.pretrained_models.set(j.id, j); });
    renderAll();

    // Selection: a delegated listener survives re-rendering.
    document.querySelector('.tab-content').addEventListener('change', function (event) {
        const target = event.target;
        if (target.classList.contains('job-check')) {
            if (target.checked) selected.add(target.dataset.id); else selected.delete(target.dataset.id);
            renderAll();
        } else if (target.classList.contains('select-all')) {
            const key = target.closest('table').id.replace('-table', '');
            jobs[key].forEach(function (job) {
                if (target.checked) selected.add(job.id); else selected.delete(job.id);
            });
            renderAll();
        }
    });

    async function forSelected(verb, request) {
        const ids = Array.from(selected);
        const failures = [];
        for (const id of ids) {
            try {
                await request(id);
                if (verb === 'delete') applyUpdate({id: id, deleted: true});
            } catch (error) {
                const job = jobs.datasets.get(id) || jobs.models.get(id) || jobs.pretrained_models.get(id);
                failures.push((job ? job.name : id) + ': ' + error.message);
            }
        }
        if (failures.length) DIGITS.alert('Could not ' + verb + ' ' + failures.join(' | '));
    }

    document.getElementById('delete-selected').addEventListener('click', function () {
        if (!window.confirm('Delete ' + selected.size + ' job(s)? Their files are removed.')) return;
        forSelected('delete', function (id) {
            return DIGITS.fetchJSON(DIGITS.url('/jobs/' + encodeURIComponent(id)), {method: 'DELETE'});
        });
    });
    document.getElementById('abort-selected').addEventListener('click', function () {
        forSelected('abort', function (id) {
            return DIGITS.fetchJSON(DIGITS.url('/jobs/' + encodeURIComponent(id) + '/abort'), {method: 'POST'});
        });
    });

    const socket = DIGITS.join('home');
    socket.on('job_update', applyUpdate);

    // Keep the tab across reloads.
    const tabKey = 'digits.home.tab';
    const saved = window.sessionStorage && sessionStorage.getItem(tabKey);
    if (saved && document.getElementById(saved)) bootstrap.Tab.getOrCreateInstance(document.getElementById(saved)).show();
    document.querySelectorAll('#home-tabs button').forEach(function (button) {
        button.addEventListener('shown.bs.tab', function () { sessionStorage.setItem(tabKey, button.id); });
    });
})();
