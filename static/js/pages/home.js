/* The home page (templates/home.html): the job tables, kept live from the "home" room. */
(function () {
    'use strict';
    const el = DIGITS.el;
    // id -> summary, per table; the page's only state besides the UI.
    const jobs = {datasets: new Map(), models: new Map(), pretrained_models: new Map()};
    const collapsedGroups = new Set();
    const selected = new Set();
    const initial = DIGITS.pageData().jobs;
    // The Ray cluster the tasks run on (null when they run on this machine): its nodes and what they have free.
    let cluster = DIGITS.pageData().cluster;

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

    const dash = '\u2014';
    function active(job) { return job.status === 'Running' || job.status === 'Waiting'; }
    // Seconds of training: how long it took, or how long it has run so far.
    function duration(job) {
        if (job.duration != null) return job.duration;
        return job.started && job.status === 'Running' ? Date.now() / 1000 - job.started : null;
    }

    function nameCell(job, grouped) {
        return el('td', {className: grouped ? 'ps-4' : ''},
            el('a', {href: jobUrl(job), className: 'job-name fw-semibold text-decoration-none'}, job.name));
    }
    function statusCell(job) {
        const status = el('td', {className: 'job-status'}, DIGITS.statusBadge(job.status));
        if (job.interrupted) {
            status.appendChild(document.createTextNode(' '));
            status.appendChild(el('span', {
                className: 'badge text-bg-light border text-warning-emphasis',
                title: 'The server stopped while this job ran',
            }, 'interrupted'));
        }
        // What it waits for (a dataset, a GPU on a cluster node, a cluster that does not answer), in words.
        if (job.status === 'Waiting' && job.waiting_for) {
            status.appendChild(el('div', {className: 'small text-muted job-waiting', style: {maxWidth: '28rem'}},
                                  DIGITS.waitingText(job)));
        }
        return status;
    }
    function progressCell(job) {
        const cell = el('td', {className: 'job-progress'},
            active(job) ? DIGITS.progressBar(job.progress, {
                className: 'progress-thin', animated: job.status === 'Running', label: false,
                barClass: job.status === 'Waiting' ? 'bg-secondary' : '',
            }) : null);
        if (active(job)) cell.title = Math.round((job.progress || 0) * 100) + '%';
        return cell;
    }
    function textCell(className, text, title) {
        return el('td', {className: className, title: title || null}, text == null || text === '' ? dash : String(text));
    }

    /* Each table's columns: key (sorting, data-sort of the header), title, the value sorted by, the cell.
       Sorting compares values; missing values sort last either way. */
    const common = {
        name: {title: 'Name', value: function (j) { return (j.name || '').toLowerCase(); }, cell: nameCell},
        kind: {title: 'Type', value: function (j) { return j.kind || ''; },
               cell: function (j) { return el('td', {className: 'text-muted small'}, DIGITS.kindTitle(j.kind)); }},
        status: {title: 'Status', value: function (j) { return j.status || ''; }, cell: statusCell},
        progress: {title: 'Progress', width: '10rem', value: function (j) { return active(j) ? j.progress || 0 : null; },
                   cell: progressCell},
        node: {title: 'Node', value: function (j) { return j.node || null; },
               cell: function (j) { return textCell('job-node small text-nowrap', j.node, 'The cluster node it runs (or ran) on'); }},
        username: {title: 'Owner', value: function (j) { return j.username || ''; },
                   cell: function (j) { return textCell('job-owner', j.username); }},
        created: {title: 'Created', value: function (j) { return j.created || 0; },
                  cell: function (j) {
                      return el('td', {className: 'job-created text-nowrap small', title: String(j.created)}, DIGITS.formatTime(j.created));
                  }},
    };
    const COLUMNS = {
        datasets: ['name', 'kind', 'status', 'progress', {
            key: 'entries', title: 'Entries', numeric: true, value: function (j) { return j.entries; },
            cell: function (j) { return textCell('job-entries text-end', j.entries != null ? DIGITS.formatNumber(j.entries) : null); },
        }, {
            key: 'size', title: 'Size', numeric: true, value: function (j) { return j.size; },
            cell: function (j) { return textCell('job-size text-end text-nowrap', j.size != null ? DIGITS.formatBytes(j.size) : null); },
        }, 'username', 'created'],
        models: ['name', {
            key: 'dataset', title: 'Dataset', value: function (j) { return (j.dataset || '').toLowerCase() || null; },
            cell: function (j) {
                return el('td', {className: 'job-dataset small'}, j.dataset
                    ? el('a', {href: DIGITS.url('/datasets/' + encodeURIComponent(j.dataset_id)), className: 'text-decoration-none'}, j.dataset)
                    : dash);
            },
        }, {
            key: 'network', title: 'Network', value: function (j) { return j.network || null; },
            cell: function (j) { return textCell('job-network small', j.network); },
        }, {
            key: 'framework', title: 'Framework', value: function (j) { return j.framework || null; },
            cell: function (j) { return textCell('job-framework small', j.framework); },
        }, {
            key: 'epochs', title: 'Epochs', numeric: true, value: function (j) { return j.epochs != null ? Number(j.epochs) : null; },
            cell: function (j) { return textCell('job-epochs text-end', j.epochs); },
        }, 'status', 'progress', {
            key: 'duration', title: 'Duration', numeric: true, value: duration,
            cell: function (j) {
                const seconds = duration(j);
                return textCell('job-duration text-end text-nowrap small', seconds != null ? DIGITS.formatDuration(seconds) : null,
                                j.duration == null && seconds != null ? 'so far' : null);
            },
        }, {
            key: 'best_val_accuracy', title: 'Best val acc.', numeric: true, value: function (j) { return j.best_val_accuracy; },
            cell: function (j) {
                return textCell('job-accuracy text-end', j.best_val_accuracy != null ? (j.best_val_accuracy * 100).toFixed(2) + '%' : null);
            },
        }, 'username', 'created'],
        pretrained_models: ['name', 'kind', 'status', 'username', 'created'],
    };
    // On a cluster, the node a dataset or model runs on is a column of its own, after its progress.
    if (cluster) {
        ['datasets', 'models'].forEach(function (table) {
            COLUMNS[table].splice(COLUMNS[table].indexOf('progress') + 1, 0, 'node');
        });
    }
    Object.keys(COLUMNS).forEach(function (table) {
        COLUMNS[table] = COLUMNS[table].map(function (c) { return typeof c === 'string' ? Object.assign({key: c}, common[c]) : c; });
    });
    // Newest first until the user clicks a header; a second click on it reverses.
    const sorting = {datasets: {key: 'created', desc: true}, models: {key: 'created', desc: true},
                     pretrained_models: {key: 'created', desc: true}};
    let filterText = '';

    function matches(job) {
        if (!filterText) return true;
        const haystack = [job.name, job.kind, job.status, job.username, job.group, job.dataset, job.network, job.framework,
                          job.node]
            .filter(Boolean).join(' ').toLowerCase();
        return filterText.split(/\s+/).every(function (word) { return haystack.indexOf(word) >= 0; });
    }

    function comparer(key) {
        const column = COLUMNS[key].find(function (c) { return c.key === sorting[key].key; });
        const sign = sorting[key].desc ? -1 : 1;
        return function (a, b) {
            const x = column.value(a), y = column.value(b);
            if (x == null || x === '') return y == null || y === '' ? 0 : 1;
            if (y == null || y === '') return -1;
            if (x < y) return -sign;
            if (x > y) return sign;
            return (b.created || 0) - (a.created || 0);
        };
    }

    function renderHeader(key) {
        const row = document.getElementById(key + '-table').tHead.rows[0];
        const cells = [el('th', {className: 'col-check'}, el('input', {
            type: 'checkbox', className: 'form-check-input select-all', 'aria-label': 'Select all ' + key}))];
        COLUMNS[key].forEach(function (column) {
            const current = sorting[key].key === column.key;
            cells.push(el('th', {
                className: 'sortable text-nowrap' + (column.numeric ? ' text-end' : '') + (current ? ' sorted' : ''),
                dataset: {sort: column.key}, style: column.width ? {width: column.width} : null, role: 'button',
                'aria-sort': current ? (sorting[key].desc ? 'descending' : 'ascending') : 'none',
                title: 'Sort by ' + column.title.toLowerCase(),
            }, [column.title, current ? el('span', {className: 'sort-arrow'}, sorting[key].desc ? ' \u25BE' : ' \u25B4') : null]));
        });
        row.replaceChildren.apply(row, cells);
    }

    function jobRow(key, job, grouped) {
        const check = el('input', {
            type: 'checkbox', className: 'form-check-input job-check',
            'aria-label': 'Select ' + job.name, dataset: {id: job.id},
        });
        check.checked = selected.has(job.id);
        return el('tr', {className: 'job-row', id: 'job-' + job.id, dataset: {id: job.id, group: job.group || ''}},
            [el('td', {className: 'col-check'}, check)].concat(COLUMNS[key].map(function (column) {
                return column.cell(job, grouped);
            })));
    }

    function groupRow(key, name, members) {
        const collapsed = collapsedGroups.has(name);
        const running = members.filter(active).length;
        return el('tr', {className: 'group-row', dataset: {group: name}, style: {cursor: 'pointer'},
                         onclick: function () {
                             if (collapsedGroups.has(name)) collapsedGroups.delete(name);
                             else collapsedGroups.add(name);
                             renderAll();
                         }}, [
            el('td', {className: 'col-check'}, collapsed ? '\u25B8' : '\u25BE'),
            el('td', {colspan: COLUMNS[key].length}, [
                name, ' ',
                el('span', {className: 'badge rounded-pill text-bg-secondary fw-normal'}, String(members.length)),
                running ? el('span', {className: 'ms-2 small fw-normal text-primary'}, running + ' active') : null,
            ]),
        ]);
    }

    function render(key) {
        const table = document.getElementById(key + '-table');
        const tbody = table.tBodies[0];
        const all = Array.from(jobs[key].values());
        const list = all.filter(matches).sort(comparer(key));
        // Ungrouped jobs stand alone; a group is placed where its first job in this order would be.
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
            if (entry.job) { rows.push(jobRow(key, entry.job, false)); return; }
            const members = groups.get(entry.group);
            rows.push(groupRow(key, entry.group, members));
            if (!collapsedGroups.has(entry.group)) {
                members.forEach(function (job) { rows.push(jobRow(key, job, true)); });
            }
        });
        renderHeader(key);
        tbody.replaceChildren.apply(tbody, rows);
        document.getElementById(key + '-count').textContent = filterText ? list.length + '/' + all.length : all.length;
        const note = table.closest('.card').querySelector('.empty-note');
        note.classList.toggle('d-none', list.length > 0);
        note.querySelector('.empty-none').classList.toggle('d-none', all.length > 0);
        note.querySelector('.empty-filtered').classList.toggle('d-none', all.length === 0);
        table.classList.toggle('d-none', all.length === 0);
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

    // Live updates carry the summary only: the columns (accuracy, duration, size) are read again from
    // /index.json when a job appears or changes status.
    const reloadColumns = DIGITS.throttle(async function () {
        try {
            const lists = await DIGITS.fetchJSON(DIGITS.url('/index.json'));
            Object.keys(jobs).forEach(function (key) {
                (lists[key] || []).forEach(function (j) { if (jobs[key].has(j.id)) jobs[key].set(j.id, j); });
            });
            if (cluster) cluster = lists.cluster;
            renderCluster();
            renderAll();
        } catch (error) { /* the next update tries again */ }
    }, 2000);

    function applyUpdate(summary) {
        if (!summary || !summary.id) return;
        const key = tableFor(summary);
        const known = key && jobs[key].get(summary.id);
        if (!summary.deleted && key && (!known || known.status !== summary.status)) reloadColumns();
        if (summary.deleted) {
            jobs.datasets.delete(summary.id);
            jobs.models.delete(summary.id);
            jobs.pretrained_models.delete(summary.id);
            selected.delete(summary.id);
        } else {
            if (!key) return;
            jobs[key].set(summary.id, Object.assign({}, jobs[key].get(summary.id) || {}, summary));
        }
        renderAll();
    }

    function renderCluster() {
        const panel = document.getElementById('cluster-panel');
        if (!panel || !cluster) return;
        const problem = document.getElementById('cluster-problem');
        problem.classList.toggle('d-none', !cluster.problem);
        problem.textContent = cluster.problem ? DIGITS.waitingText({waiting_for: cluster.problem}) : '';
        const nodes = cluster.nodes || [];
        document.getElementById('cluster-state').replaceChildren(cluster.problem ? ''
            : el('span', {className: 'text-muted'}, nodes.length + (nodes.length === 1 ? ' node' : ' nodes')));
        const free = function (total, busy) { return (total - (busy || 0)) + ' / ' + total; };
        const body = document.getElementById('cluster-nodes').tBodies[0];
        document.getElementById('cluster-nodes').classList.toggle('d-none', !nodes.length);
        body.replaceChildren.apply(body, nodes.map(function (node) {
            return el('tr', {className: 'cluster-node' + (node.problem ? ' table-warning' : ''), dataset: {id: node.id}}, [
                el('td', {className: 'node-name', title: node.id}, node.name),
                el('td', {className: 'node-gpus text-end'}, free(node.gpus, node.gpus_busy)),
                el('td', {className: 'node-cpus text-end'}, free(node.cpus, node.cpus_busy)),
                el('td', {className: 'node-problem text-danger-emphasis'}, node.problem || ''),
            ]);
        }));
    }
    renderCluster();
    // What the nodes have free changes with no job event when other work on the cluster takes or frees it.
    if (cluster) setInterval(function () { if (!document.hidden) reloadColumns(); }, 5000);

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

    document.querySelector('.tab-content').addEventListener('click', function (event) {
        const header = event.target.closest('th.sortable');
        if (!header) return;
        const key = header.closest('table').id.replace('-table', '');
        const sort = sorting[key];
        const column = header.dataset.sort;
        // A first click on a column shows the most (largest, newest) first for numbers, A to Z for text.
        const numeric = COLUMNS[key].find(function (c) { return c.key === column; }).numeric || column === 'created';
        sorting[key] = sort.key === column ? {key: column, desc: !sort.desc} : {key: column, desc: numeric};
        render(key);
    });

    const filter = document.getElementById('job-filter');
    filter.addEventListener('input', DIGITS.debounce(function () {
        filterText = filter.value.trim().toLowerCase();
        renderAll();
    }, 150));

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
        // A dataset that models (not deleted with it) are made from cannot go: say so before asking to confirm.
        const inUse = Array.from(selected).filter(function (id) { return jobs.datasets.has(id); }).map(function (id) {
            const users = Array.from(jobs.models.values()).filter(function (m) { return m.dataset_id === id && !selected.has(m.id); });
            return users.length ? jobs.datasets.get(id).name + ' (used by ' + users.map(function (m) { return m.name; }).join(', ') + ')' : null;
        }).filter(Boolean);
        if (inUse.length) {
            DIGITS.alert('Cannot delete ' + inUse.join('; ') + ': delete or select the models first.', 'warning');
            return;
        }
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
