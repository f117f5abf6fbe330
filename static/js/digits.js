/*
 * DIGITS front-end helpers: one global namespace, no dependencies besides the
 * vendored socket.io client (for DIGITS.socket) and Bootstrap (tooltips).
 *
 * Pages receive data as JSON (embedded with |tojson, then refreshed over
 * Socket.IO or fetchJSON) and render it with these helpers; the server never
 * pushes HTML.
 */
window.DIGITS = (function () {
    'use strict';

    const DIGITS = {
        /* request.script_root, from <meta name="script-root">: base.html puts its meta tags before this file. */
        root: meta('script-root'),
    };

    function meta(name) {
        const node = document.querySelector('meta[name="' + name + '"]');
        return node ? node.getAttribute('content') : '';
    }

    /** Absolute URL of an app path ('/jobs/x'), honouring a URL prefix. */
    DIGITS.url = function (path) {
        const root = (DIGITS.root || '').replace(/\/+$/, '');
        if (!path) return root + '/';
        return root + (path.charAt(0) === '/' ? path : '/' + path);
    };

    DIGITS.csrfToken = function () {
        return meta('csrf-token');
    };

    /**
     * What the server gave the page to draw: the JSON in <script type="application/json" id="page-data">
     * (templates/macros/page.html: page_data). Returns {} when the page has none.
     */
    DIGITS.pageData = function (id) {
        const node = document.getElementById(id || 'page-data');
        return node ? JSON.parse(node.textContent) : {};
    };

    /* Turn the body of an error answer into one readable line. */
    function errorText(data) {
        if (data == null) return '';
        const value = data.errors !== undefined ? data.errors
            : data.error !== undefined ? data.error
            : data.message !== undefined ? data.message
            : data;
        return flatten(value);
    }

    function flatten(value) {
        if (value == null) return '';
        if (typeof value === 'string') return value;
        if (Array.isArray(value)) return value.map(flatten).filter(Boolean).join('; ');
        if (typeof value === 'object') {
            if (typeof value.message === 'string') return value.message;
            return Object.keys(value).map(function (k) {
                return k + ': ' + flatten(value[k]);
            }).join('; ');
        }
        return String(value);
    }

    /**
     * fetch() wrapper for the JSON API.
     * options: {method = 'GET', body, headers}. A plain-object body is sent as
     * JSON; FormData / URLSearchParams / strings are sent as they are.
     * Returns the parsed JSON (or null for an empty answer). A non-2xx answer
     * throws an Error whose message comes from {"errors": ..} or {"error": ..};
     * the Error also carries .status and .data.
     */
    DIGITS.fetchJSON = async function (url, options) {
        options = options || {};
        const method = (options.method || 'GET').toUpperCase();
        const headers = Object.assign({
            'Accept': 'application/json',
            'X-CSRFToken': DIGITS.csrfToken(),
            'X-Requested-With': 'XMLHttpRequest',
        }, options.headers || {});
        let body = options.body;
        if (body !== undefined && body !== null && !(body instanceof FormData)
                && !(body instanceof URLSearchParams) && typeof body !== 'string'
                && !(body instanceof Blob)) {
            body = JSON.stringify(body);
            headers['Content-Type'] = 'application/json';
        }
        const response = await fetch(url, {
            method: method,
            headers: headers,
            body: body,
            credentials: 'same-origin',
        });
        const text = await response.text();
        let data = null;
        if (text) {
            try {
                data = JSON.parse(text);
            } catch (e) {
                data = null;
            }
        }
        if (!response.ok) {
            let message = errorText(data);
            if (!message) message = response.status + ' ' + (response.statusText || 'error');
            const error = new Error(message);
            error.status = response.status;
            error.data = data;
            throw error;
        }
        if (data === null && text) {
            throw new Error('The server answered something that is not JSON');
        }
        return data;
    };

    /* ---------- Socket.IO ---------- */

    let socketInstance = null;
    const rooms = new Set();

    /** The page's Socket.IO client (one per page), connected under DIGITS.root. */
    DIGITS.socket = function () {
        if (socketInstance) return socketInstance;
        if (typeof io === 'undefined') {
            throw new Error('socket.io client not loaded');
        }
        socketInstance = io({path: DIGITS.url('/socket.io')});
        // 'connect' fires again after every reconnection: rooms are per
        // connection on the server, so join them again.
        socketInstance.on('connect', function () {
            rooms.forEach(function (room) {
                socketInstance.emit('join', {room: room});
            });
            document.body.classList.remove('digits-offline');
        });
        socketInstance.on('disconnect', function () {
            document.body.classList.add('digits-offline');
        });
        return socketInstance;
    };

    /** Join a room ('home' or a job id) now and after every reconnect. */
    DIGITS.join = function (room) {
        const socket = DIGITS.socket();
        rooms.add(room);
        if (socket.connected) socket.emit('join', {room: room});
        return socket;
    };

    /* ---------- formatting ---------- */

    const STATUS_CLASSES = {
        'Initialized': 'text-bg-secondary',
        'Waiting': 'text-bg-secondary',
        'Running': 'text-bg-primary',
        'Done': 'text-bg-success',
        'Aborted': 'text-bg-orange',
        'Error': 'text-bg-danger',
    };

    DIGITS.statusClass = function (status) {
        return STATUS_CLASSES[status] || 'text-bg-light';
    };

    /** A <span class="badge"> for a status name (Initialized, Running, ...). */
    DIGITS.statusBadge = function (status) {
        const span = document.createElement('span');
        span.className = 'badge status-badge ' + DIGITS.statusClass(status);
        span.textContent = status || 'Unknown';
        return span;
    };

    /** 75 -> "1 min 15 s", 7300 -> "2 h 1 min". */
    DIGITS.formatDuration = function (seconds) {
        if (seconds == null || !isFinite(seconds)) return '';
        seconds = Math.max(0, Math.round(seconds));
        const d = Math.floor(seconds / 86400);
        const h = Math.floor((seconds % 86400) / 3600);
        const m = Math.floor((seconds % 3600) / 60);
        const s = seconds % 60;
        if (d) return d + ' d' + (h ? ' ' + h + ' h' : '');
        if (h) return h + ' h' + (m ? ' ' + m + ' min' : '');
        if (m) return m + ' min' + (s ? ' ' + s + ' s' : '');
        return s + ' s';
    };

    /** Seconds left -> "about 40 s left", "about 3 min left" (rounded the way people say it, never below
        what is left by more than the rounding: 70 s is "about 70 s", not "less than a minute"). */
    DIGITS.formatEta = function (seconds) {
        if (seconds == null || !isFinite(seconds)) return '';
        if (seconds < 10) return 'a few seconds left';
        if (seconds < 90) return 'about ' + Math.round(seconds / 10) * 10 + ' s left';
        if (seconds < 3600) {
            const m = Math.round(seconds / 60);
            return 'about ' + m + ' min left';
        }
        if (seconds < 86400) {
            const h = Math.floor(seconds / 3600);
            const m = Math.round((seconds % 3600) / 60);
            return 'about ' + h + ' h' + (m ? ' ' + m + ' min' : '') + ' left';
        }
        return 'about ' + Math.round(seconds / 86400) + ' d left';
    };

    function toDate(value) {
        if (value == null || value === '') return null;
        if (typeof value === 'number') return new Date(value * 1000);
        const n = Number(value);
        if (!isNaN(n)) return new Date(n * 1000);
        const d = new Date(value);
        return isNaN(d.getTime()) ? null : d;
    }

    /** Epoch seconds (or an ISO string) -> local "2024-05-01 14:03:22". */
    DIGITS.formatTime = function (epoch) {
        const d = toDate(epoch);
        if (!d) return '';
        const pad = function (n) { return String(n).padStart(2, '0'); };
        return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate())
            + ' ' + pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
    };

    /** Fill every <time data-epoch="..."> below root with local time. */
    DIGITS.localizeTimes = function (root) {
        (root || document).querySelectorAll('[data-epoch]').forEach(function (el) {
            const text = DIGITS.formatTime(el.getAttribute('data-epoch'));
            if (text) el.textContent = text;
        });
    };

    /** A task's progress while it runs ("40% · about 3 min left", "almost done" past 95%), how long it took
        once done, or ''. */
    DIGITS.taskTiming = function (task) {
        if (task.status === 'Running') {
            const progress = task.progress || 0;
            const eta = progress >= 0.95 ? 'almost done' : DIGITS.formatEta(task.eta);
            return Math.round(progress * 100) + '%' + (eta ? ' \u00b7 ' + eta : '');
        }
        if (task.started && task.finished) return 'took ' + DIGITS.formatDuration(task.finished - task.started);
        return '';
    };

    /** What a task waits for, as a sentence: the scheduler's "waiting for dataset digits" -> "Waiting for dataset digits". */
    DIGITS.waitingText = function (task) {
        const text = String(task.waiting_for || '');
        return text.charAt(0).toUpperCase() + text.slice(1);
    };

    /**
     * A code editor over `textarea` (CodeMirror 5 with Python highlighting and line numbers, vendored in
     * static/vendor/codemirror/, when the page loads it; the plain textarea otherwise). The textarea stays the
     * form field: it is kept equal to the editor, and gets an `input` event at each change.
     * Returns {value() -> the source, setValue(text), showLine(n, isError) -> selects line n (1-based) and, for
     * an error, marks it until the next change}.
     */
    DIGITS.codeEditor = function (textarea) {
        if (textarea.codeEditor) return textarea.codeEditor;
        const cm = typeof CodeMirror === 'undefined' ? null : CodeMirror.fromTextArea(textarea, {
            mode: 'python', lineNumbers: true, indentUnit: 4, tabSize: 4, indentWithTabs: false,
            extraKeys: {Tab: function (editor) {
                if (editor.somethingSelected()) editor.indentSelection('add');
                else editor.replaceSelection('    ');
            }, 'Shift-Tab': function (editor) { editor.indentSelection('subtract'); }},
        });
        let marked = null;
        if (cm) {
            // Made while its tab is hidden, CodeMirror measures nothing: measure again once it is shown.
            if (window.ResizeObserver) new ResizeObserver(function () { cm.refresh(); }).observe(cm.getWrapperElement());
            cm.on('change', function () {
                cm.save();
                if (marked !== null) { cm.removeLineClass(marked, 'wrap', 'cm-error-line'); marked = null; }
                textarea.dispatchEvent(new Event('input', {bubbles: true}));
            });
        } else {
            DIGITS.indentOnTab(textarea);
        }
        const api = {
            value: function () { return cm ? cm.getValue() : textarea.value; },
            setValue: function (text) {
                if (cm) { cm.setValue(text); cm.setCursor(0, 0); cm.scrollTo(0, 0); } else { textarea.value = text; }
            },
            showLine: function (number, isError) {
                const lines = api.value().split('\n');
                if (number < 1 || number > lines.length) return;
                if (cm) {
                    const line = number - 1;
                    cm.focus();
                    cm.setSelection({line: line, ch: 0}, {line: line, ch: lines[line].length});
                    cm.scrollIntoView({line: line, ch: 0}, 80);
                    if (isError) {
                        if (marked !== null) cm.removeLineClass(marked, 'wrap', 'cm-error-line');
                        marked = cm.addLineClass(line, 'wrap', 'cm-error-line');
                    }
                    return;
                }
                const start = lines.slice(0, number - 1).reduce(function (n, text) { return n + text.length + 1; }, 0);
                textarea.focus();
                textarea.setSelectionRange(start, start + lines[number - 1].length);
                const lineHeight = parseFloat(getComputedStyle(textarea).lineHeight) || 18;
                textarea.scrollTop = Math.max(0, (number - 5) * lineHeight);
            },
        };
        textarea.codeEditor = api;
        return api;
    };

    /** On a form opened by Clone (?clone=<id>), make the name field say it is a new job: "digits (clone)". */
    DIGITS.suggestCloneName = function (field) {
        if (!field || !field.value || !new URLSearchParams(window.location.search).has('clone')) return;
        if (!/\(clone( \d+)?\)$/.test(field.value)) field.value += ' (clone)';
    };

    const FORM_KEY = 'digits.form:';

    /**
     * Keep `form`'s fields across a login: a POST refused for want of a login sends the browser to the login
     * page, which brings it back here (GET) with the form empty. The fields are kept in sessionStorage (this
     * tab only) on submit and put back when the page is reached from the login page; a job page forgets
     * them (the form was accepted). Files and passwords are never kept. Returns true when fields were restored.
     */
    DIGITS.keepFormAcrossLogin = function (form) {
        const key = FORM_KEY + window.location.pathname;
        form.addEventListener('submit', function () {
            const fields = [];
            Array.from(form.elements).forEach(function (field) {
                if (!field.name || field.name === 'csrf_token' || field.type === 'file' || field.type === 'password'
                    || field.type === 'submit' || field.type === 'button') return;
                if (field.type === 'checkbox' || field.type === 'radio') fields.push([field.name, field.value, field.checked]);
                else if (field.multiple) fields.push([field.name, Array.from(field.selectedOptions).map(function (o) { return o.value; })]);
                else fields.push([field.name, field.value]);
            });
            try { sessionStorage.setItem(key, JSON.stringify({at: Date.now(), fields: fields})); } catch (error) { /* full: not kept */ }
        });
        const fromLogin = !!document.referrer && /\/login\/?$/.test(new URL(document.referrer).pathname);
        const saved = sessionStorage.getItem(key);
        if (!saved || !fromLogin) return false;
        sessionStorage.removeItem(key);
        JSON.parse(saved).fields.forEach(function (entry) {
            const named = Array.from(form.elements).filter(function (field) { return field.name === entry[0]; });
            named.forEach(function (field) {
                if (field.type === 'checkbox' || field.type === 'radio') {
                    if (field.value === entry[1]) field.checked = entry[2];
                } else if (field.multiple) {
                    Array.from(field.options).forEach(function (o) { o.selected = entry[1].indexOf(o.value) >= 0; });
                } else if (named.length === 1) {
                    if (field.codeEditor) field.codeEditor.setValue(entry[1]);
                    else field.value = entry[1];
                }
                field.dispatchEvent(new Event('input', {bubbles: true}));
                field.dispatchEvent(new Event('change', {bubbles: true}));
            });
        });
        return true;
    };

    /** Forget every form kept by keepFormAcrossLogin (a job page: the form that made it was accepted). */
    DIGITS.forgetKeptForms = function () {
        try {
            Object.keys(sessionStorage).forEach(function (key) { if (key.indexOf(FORM_KEY) === 0) sessionStorage.removeItem(key); });
        } catch (error) { /* no storage: nothing kept */ }
    };

    /** A job kind for people: 'image-classification' -> "Image Classification". */
    DIGITS.kindTitle = function (kind) {
        return (kind || '').split(/[-_]/).filter(Boolean).map(function (w) {
            return w.charAt(0).toUpperCase() + w.slice(1);
        }).join(' ');
    };

    DIGITS.formatNumber = function (n) {
        return n == null ? '' : Number(n).toLocaleString();
    };

    /* ---------- small DOM helpers ---------- */

    /**
     * DIGITS.el('a', {href: x, className: 'y', dataset: {id: 1}}, ['text', child])
     * Text children become text nodes, so data is never parsed as HTML.
     */
    DIGITS.el = function (tag, attrs, children) {
        const node = document.createElement(tag);
        if (attrs) {
            Object.keys(attrs).forEach(function (key) {
                const value = attrs[key];
                if (value == null || value === false) return;
                if (key === 'className') node.className = value;
                else if (key === 'text') node.textContent = value;
                else if (key === 'dataset') Object.assign(node.dataset, value);
                else if (key === 'style' && typeof value === 'object') Object.assign(node.style, value);
                else if (key.slice(0, 2) === 'on' && typeof value === 'function') {
                    node.addEventListener(key.slice(2).toLowerCase(), value);
                } else if (value === true) node.setAttribute(key, '');
                else node.setAttribute(key, value);
            });
        }
        [].concat(children == null ? [] : children).forEach(function (child) {
            if (child == null || child === false) return;
            node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
        });
        return node;
    };

    /** A Bootstrap progress bar for a fraction 0..1. */
    DIGITS.progressBar = function (fraction, options) {
        options = options || {};
        const pct = Math.max(0, Math.min(100, Math.round((fraction || 0) * 100)));
        const bar = DIGITS.el('div', {
            className: 'progress-bar' + (options.animated ? ' progress-bar-striped progress-bar-animated' : '')
                + (options.barClass ? ' ' + options.barClass : ''),
            style: {width: pct + '%'},
        }, options.label === false ? null : pct + '%');
        return DIGITS.el('div', {
            className: 'progress' + (options.className ? ' ' + options.className : ''),
            role: 'progressbar',
            'aria-valuenow': pct, 'aria-valuemin': 0, 'aria-valuemax': 100,
        }, bar);
    };

    /** Call fn at most once per `ms`; the last call in a burst always runs. */
    DIGITS.throttle = function (fn, ms) {
        let last = 0;
        let timer = null;
        let pending = null;
        return function () {
            pending = [this, arguments];
            const wait = last + ms - Date.now();
            if (timer) return;
            const run = function () {
                timer = null;
                last = Date.now();
                const call = pending;
                pending = null;
                fn.apply(call[0], call[1]);
            };
            if (wait <= 0) run();
            else timer = setTimeout(run, wait);
        };
    };

    /** Call fn once `ms` after the last call. */
    DIGITS.debounce = function (fn, ms) {
        let timer = null;
        return function () {
            const self = this;
            const args = arguments;
            clearTimeout(timer);
            timer = setTimeout(function () { fn.apply(self, args); }, ms);
        };
    };

    /** 1536 -> "1.5 KiB", 3.2e9 -> "3.0 GiB". */
    DIGITS.formatBytes = function (bytes) {
        if (bytes == null || !isFinite(bytes)) return '';
        const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
        let value = Math.abs(Number(bytes));
        let unit = 0;
        while (value >= 1024 && unit < units.length - 1) {
            value /= 1024;
            unit += 1;
        }
        return (bytes < 0 ? '-' : '') + (unit === 0 ? String(Math.round(value)) : value.toFixed(value < 10 ? 1 : 0)) + ' ' + units[unit];
    };

    /** An epoch for people: 3 -> "3", 2.3333 -> "2.33". */
    DIGITS.formatEpoch = function (epoch) {
        if (epoch == null || !isFinite(epoch)) return '';
        return String(Math.round(Number(epoch) * 100) / 100);
    };

    /** A metric or learning rate: 4 significant digits, exponent for tiny values (1e-5). */
    DIGITS.formatMetric = function (value) {
        if (value == null || !isFinite(value)) return '';
        const n = Number(value);
        if (n === 0) return '0';
        if (Math.abs(n) < 1e-3 || Math.abs(n) >= 1e6) return n.toExponential(2).replace(/\.?0+e/, 'e');
        return String(Number(n.toPrecision(4)));
    };

    /**
     * Make Tab in a <textarea> insert 4 spaces (Shift+Tab removes up to 4 at
     * the line start), as code editors do. Escape then Tab still moves the
     * focus on, so the keyboard is never trapped.
     */
    DIGITS.indentOnTab = function (textarea, indent) {
        if (!textarea) return;
        indent = indent || '    ';
        let escaped = false;
        textarea.addEventListener('keydown', function (event) {
            if (event.key === 'Escape') { escaped = true; return; }
            if (event.key !== 'Tab' || event.ctrlKey || event.altKey || event.metaKey || escaped) {
                escaped = false;
                return;
            }
            event.preventDefault();
            const value = textarea.value;
            const start = textarea.selectionStart;
            const end = textarea.selectionEnd;
            if (event.shiftKey) {
                const lineStart = value.lastIndexOf('\n', start - 1) + 1;
                const spaces = /^ */.exec(value.slice(lineStart, lineStart + indent.length))[0].length;
                if (!spaces) return;
                textarea.setRangeText('', lineStart, lineStart + spaces, 'preserve');
                textarea.setSelectionRange(Math.max(lineStart, start - spaces), Math.max(lineStart, end - spaces));
            } else {
                textarea.setRangeText(indent, start, end, 'end');
            }
            // Tell listeners (dirty flags, validation) that the text changed.
            textarea.dispatchEvent(new Event('input', {bubbles: true}));
        });
    };

    /** Show a dismissible alert at the top of the page content. */
    DIGITS.alert = function (message, category) {
        const box = document.getElementById('digits-alerts');
        if (!box) { window.alert(message); return; }
        const alert = DIGITS.el('div', {
            className: 'alert alert-' + (category || 'danger') + ' alert-dismissible fade show',
            role: 'alert',
        }, [
            DIGITS.el('span', {text: message}),
            DIGITS.el('button', {type: 'button', className: 'btn-close', 'data-bs-dismiss': 'alert', 'aria-label': 'Close'}),
        ]);
        box.appendChild(alert);
        alert.scrollIntoView({block: 'nearest'});
    };

    /** Enable Bootstrap tooltips on [data-bs-toggle="tooltip"] below root. */
    DIGITS.initTooltips = function (root) {
        if (typeof bootstrap === 'undefined') return;
        (root || document).querySelectorAll('[data-bs-toggle="tooltip"]').forEach(function (el) {
            bootstrap.Tooltip.getOrCreateInstance(el);
        });
    };

    document.addEventListener('DOMContentLoaded', function () {
        DIGITS.localizeTimes(document);
        DIGITS.initTooltips(document);
    });


    /**
     * What every job page does besides drawing itself: live updates from the job's room, inline editing
     * of name, group and notes, and the Abort, Resume and Delete buttons.
     * options: {jobId, jsonUrl, resumeUrl, kind ("dataset", "model"), canEdit, homeUrl,
     *           getJob() -> the job as last rendered, render(job)}.
     * Returns {refresh(), editing() -> the id of the field being edited or null, renderCommon(job) -> draws the
     * header and the Job card of templates/macros/job.html}.
     */
    DIGITS.jobPage = function (options) {
        DIGITS.forgetKeptForms();
        const JOB_ID = options.jobId;
        const jobUrl = DIGITS.url('/jobs/' + encodeURIComponent(JOB_ID));
        const byId = function (id) { return document.getElementById(id); };
        const el = DIGITS.el;
        let editing = null;
        /* ---------- live updates ---------- */

        let deleted = false;
        const refresh = DIGITS.throttle(async function () {
            if (deleted) return;
            try {
                options.render(await DIGITS.fetchJSON(options.jsonUrl));
            } catch (error) {
                if (error.status === 404) markDeleted();
            }
        }, 500);

        function markDeleted() {
            deleted = true;
            byId('deleted-notice').classList.remove('d-none');
            document.querySelectorAll('#abort-button, #resume-button, #delete-button').forEach(function (b) { b.disabled = true; });
        }

        const socket = DIGITS.join(JOB_ID);
        socket.on('job_update', function (summary) {
            if (!summary || summary.id !== JOB_ID) return;
            if (summary.deleted) { markDeleted(); return; }
            refresh();
        });
        socket.on('task_update', function (message) {
            if (message && message.job_id === JOB_ID) refresh();
        });
        // Some panels (hardware use) change with no event to announce it: poll while the job is active.
        if (options.pollSeconds) {
            setInterval(function () {
                const job = options.getJob();
                if (job && ACTIVE.indexOf(job.status) >= 0 && !document.hidden) refresh();
            }, options.pollSeconds * 1000);
        }
        // Whatever happened while disconnected is in the JSON.
        let connectedOnce = false;
        socket.on('connect', function () {
            if (connectedOnce) refresh();
            connectedOnce = true;
        });

        /* ---------- actions ---------- */

        function startEdit(node) {
            if (!options.canEdit || editing) return;
            const field = node.dataset.field;
            const multiline = !!node.dataset.multiline;
            const job = options.getJob();
            const original = job[field] || '';
            editing = node.id;
            const input = el(multiline ? 'textarea' : 'input', {
                className: 'form-control form-control-sm', rows: multiline ? 4 : null,
                type: multiline ? null : 'text', 'aria-label': field,
            });
            input.value = original;
            const hint = el('div', {className: 'form-text'}, multiline ? 'Ctrl+Enter to save, Esc to cancel' : 'Enter to save, Esc to cancel');
            node.classList.add('d-none');
            node.after(input, hint);
            input.focus();
            let done = false;
            async function finish(save) {
                if (done) return;
                done = true;
                const value = input.value.trim();
                input.remove();
                hint.remove();
                node.classList.remove('d-none');
                editing = null;
                if (save && value !== original) {
                    try {
                        const body = {};
                        body[field] = value;
                        const summary = await DIGITS.fetchJSON(jobUrl, {method: 'PUT', body: body});
                        job[field] = value;
                        if (summary && summary[field] !== undefined) job[field] = summary[field];
                    } catch (error) {
                        DIGITS.alert('Could not save the ' + field + ': ' + error.message);
                    }
                }
                options.render(job);
            }
            input.addEventListener('keydown', function (event) {
                if (event.key === 'Escape') { event.preventDefault(); finish(false); }
                if (event.key === 'Enter' && (!multiline || event.ctrlKey || event.metaKey)) { event.preventDefault(); finish(true); }
            });
            input.addEventListener('blur', function () { finish(true); });
        }

        if (options.canEdit) {
            document.querySelectorAll('.editable[data-field]').forEach(function (node) {
                node.addEventListener('click', function () { startEdit(node); });
                node.addEventListener('keydown', function (event) {
                    if (event.key === 'Enter') { event.preventDefault(); startEdit(node); }
                });
            });
        }

        const abortButton = byId('abort-button');
        if (abortButton) abortButton.addEventListener('click', async function () {
            abortButton.disabled = true;
            try {
                await DIGITS.fetchJSON(jobUrl + '/abort', {method: 'POST'});
                refresh();
            } catch (error) {
                DIGITS.alert('Could not abort: ' + error.message);
            } finally {
                abortButton.disabled = false;
            }
        });

        const resumeButton = byId('resume-button');
        if (resumeButton) resumeButton.addEventListener('click', async function () {
            resumeButton.disabled = true;
            try {
                await DIGITS.fetchJSON(options.resumeUrl, {method: 'POST'});
                refresh();
            } catch (error) {
                DIGITS.alert('Could not resume: ' + error.message);
            } finally {
                resumeButton.disabled = false;
            }
        });

        const deleteButton = byId('delete-button');
        if (deleteButton) deleteButton.addEventListener('click', async function () {
            // A job others are made from cannot go: say so first, rather than ask to confirm for nothing.
            let current = options.getJob();
            try { current = await DIGITS.fetchJSON(options.jsonUrl); } catch (error) { /* the DELETE will say */ }
            const users = (current && current.dependents) || [];
            if (users.length) {
                DIGITS.alert('This ' + options.kind + ' cannot be deleted: ' + users.map(function (d) {
                    return d.type + ' "' + d.name + '"';
                }).join(', ') + (users.length > 1 ? ' use it' : ' uses it') + '. Delete ' + (users.length > 1 ? 'them' : 'it') + ' first.', 'warning');
                return;
            }
            if (!window.confirm('Delete ' + options.kind + ' "' + current.name + '" and its files?')) return;
            deleteButton.disabled = true;
            try {
                await DIGITS.fetchJSON(jobUrl, {method: 'DELETE'});
                window.location.href = options.homeUrl;
            } catch (error) {
                let message = 'Could not delete: ' + error.message;
                const dependents = (error.data && error.data.dependents) || [];
                if (dependents.length && message.indexOf(dependents[0].name) < 0) {
                    message += ' (used by ' + dependents.map(function (d) { return d.name; }).join(', ') + ')';
                }
                DIGITS.alert(message);
                deleteButton.disabled = false;
            }
        });

        const ACTIVE = ['Waiting', 'Running'];

        function renderEditable(id, value, emptyText) {
            if (editing === id) return;  // the user is typing there
            const node = byId(id);
            node.textContent = value || (options.canEdit ? emptyText : '\u2014');
            node.classList.toggle('empty', !value);
        }

        /** What every job page shows the same way: name, status, kind, group, notes, the buttons' state. */
        function renderCommon(job) {
            renderEditable('job-name', job.name, 'Unnamed');
            renderEditable('job-group', job.group, 'none (click to set)');
            renderEditable('job-notes', job.notes, 'No notes (click to add)');
            document.title = job.name + ' - DIGITS';
            const status = byId('job-status');
            status.replaceChildren(DIGITS.statusBadge(job.status));
            if (ACTIVE.indexOf(job.status) >= 0 && job.progress != null) {
                status.appendChild(el('span', {className: 'ms-2 small text-muted'}, Math.round(job.progress * 100) + '%'));
            }
            byId('job-kind').textContent = DIGITS.kindTitle(job.kind);
            renderJobCard(job);
            byId('interrupted-notice').classList.toggle('d-none', !job.interrupted);
            const abort = byId('abort-button');
            if (abort) abort.classList.toggle('d-none', ACTIVE.indexOf(job.status) < 0);
            const resume = byId('resume-button');
            if (resume) resume.classList.toggle('d-none', !job.can_resume);
        }

        /* The rows of the Job card (templates/macros/job.html) every job page has; a page without one skips it. */
        function renderJobCard(job) {
            const set = function (id, text) { const node = byId(id); if (node) node.textContent = text; };
            set('job-owner', job.username || '');
            set('job-created', DIGITS.formatTime(job.created));
            set('job-directory', job.directory || '');

            const historyBox = byId('job-history');
            const history = job.status_history || [];
            if (historyBox) historyBox.replaceChildren.apply(historyBox, history.map(function (entry, i) {
                const next = history[i + 1];
                return el('div', null, [
                    el('span', {className: 'badge ' + DIGITS.statusClass(entry[0]) + ' me-1'}, entry[0]),
                    DIGITS.formatTime(entry[1]),
                    next ? el('span', {className: 'text-muted'}, ' (' + DIGITS.formatDuration(next[1] - entry[1]) + ')') : null,
                ]);
            }));

            const dependentsBox = byId('job-dependents');
            const dependents = job.dependents || [];
            if (dependentsBox) dependentsBox.replaceChildren.apply(dependentsBox, dependents.length
                ? dependents.map(function (d, i) {
                    const href = DIGITS.url('/' + (d.type === 'dataset' ? 'datasets' : 'models') + '/' + encodeURIComponent(d.id));
                    return el('span', null, [i ? ', ' : null, el('a', {href: href}, d.name)]);
                })
                : ['\u2014']);
        }

        return {refresh: refresh, editing: function () { return editing; }, renderCommon: renderCommon};
    };

    return DIGITS;
})();

/**
 * The Visualize button of a custom network: builds the network on the server (a child process) and shows
 * its layers as a chain of boxes (name, type, output shape, parameters) and the total, or the error with
 * the user's line (a link selects it in the editor).
 * options: {url, button, editor, result (element), fields() -> FormData of what the network is built for}.
 */
DIGITS.visualizeNetwork = function (options) {
    'use strict';
    const el = DIGITS.el;
    const box = options.result;

    function shapeText(shape) {
        if (!shape) return '?';
        if (!shape.length) return 'scalar';
        return shape.map(function (d) { return d == null ? 'N' : String(d); }).join(' \u00d7 ');
    }

    function selectLine(number) {
        DIGITS.codeEditor(options.editor).showLine(number, true);
    }

    function renderLayers(result) {
        const layers = result.layers || [];
        const chain = el('ol', {className: 'network-layers list-unstyled mb-1 d-flex flex-column align-items-center', id: 'network-layers'},
            layers.map(function (layer, i) {
                return el('li', {className: 'text-center', dataset: {layer: layer.name}, style: {width: '22rem'}}, [
                    i ? el('div', {className: 'text-muted small', 'aria-hidden': 'true'}, '\u2193') : null,
                    el('div', {className: 'border rounded px-2 py-1 small ' + (layer.type === 'Input' || layer.type === 'Loss'
                        ? 'bg-body-secondary' : 'bg-body-tertiary')}, [
                        el('div', null, [el('span', {className: 'fw-semibold layer-name'}, layer.name), ' ',
                                         el('span', {className: 'text-muted layer-type'}, layer.type)]),
                        el('div', {className: 'd-flex justify-content-between'}, [
                            el('span', {className: 'layer-shape font-monospace'}, shapeText(layer.output_shape)),
                            el('span', {className: 'layer-params text-muted'},
                               layer.params ? DIGITS.formatNumber(layer.params) + ' params' : ''),
                        ]),
                    ]),
                ]);
            }));
        const metrics = (result.metrics || []).length ? ' \u00b7 reports ' + result.metrics.join(', ') : '';
        box.replaceChildren(chain, el('div', {className: 'small text-center', id: 'network-total-params'}, [
            el('span', {className: 'fw-semibold'}, DIGITS.formatNumber(result.total_params)), ' trainable parameters',
            ' \u00b7 input ' + shapeText(result.input_shape) + (result.nclasses ? ', ' + result.nclasses + ' classes' : '') + metrics,
            result.layout ? ' \u00b7 layer shapes ' + result.layout : '',
        ]));
    }

    function renderError(message, data) {
        data = data || {};
        const line = data.user_line;
        const parts = [el('div', {className: 'alert alert-danger py-2 mb-2', id: 'network-error-message'}, message)];
        if (line != null) {
            selectLine(line);   // marked in the editor until the next change
            parts.push(el('div', {id: 'network-error-line'}, [
                el('div', {className: 'small fw-semibold mb-1'}, [
                    'Your network, ', el('a', {href: '#custom_network', onclick: function (event) {
                        event.preventDefault();
                        selectLine(line);
                    }}, 'line ' + line), ':']),
                el('div', {className: 'user-source-line'}, [el('span', {className: 'line-number'}, String(line)),
                                                            data.user_source_line || '']),
            ]));
        }
        if (data.traceback) {
            parts.push(el('details', {className: 'mt-2'}, [el('summary', {className: 'small'}, 'Traceback'),
                                                          el('pre', {className: 'traceback mb-0 mt-1'}, data.traceback)]));
        }
        box.replaceChildren.apply(box, parts);
    }

    options.button.addEventListener('click', async function () {
        const button = options.button;
        button.disabled = true;
        const label = button.textContent;
        button.textContent = 'Building\u2026';
        box.replaceChildren(el('div', {className: 'small text-muted'}, 'Building the network\u2026'));
        try {
            renderLayers(await DIGITS.fetchJSON(options.url, {method: 'POST', body: options.fields()}));
        } catch (error) {
            renderError(error.message, error.data);
        } finally {
            button.disabled = false;
            button.textContent = label;
        }
    });
};
