/* The New Model form (templates/models/new.html): dataset summary, dependent fields, LR preview, networks, Visualize. */
(function () {
    'use strict';
    const el = DIGITS.el;
    const form = document.getElementById('model-form');
    const byId = function (id) { return document.getElementById(id); };
    const DATA = DIGITS.pageData();
    const DATASETS = DATA.datasets;
    const PREVIOUS_MODELS = DATA.previous_models;
    const FRAMEWORKS = DATA.frameworks || [];
    const LR_PREVIEW_URL = DATA.lr_preview_url;
    const NETWORK_SOURCE_URL = DATA.network_source_url;

    /* ---------- dataset summary ---------- */

    function renderDataset() {
        const select = byId('dataset');
        const box = byId('dataset-summary');
        const id = select ? select.value : '';
        const dataset = DATASETS.find(function (d) { return d.id === id; });
        const rows = [];
        function row(term, value, id) {
            rows.push(el('dt', {className: 'col-5'}, term), el('dd', {className: 'col-7', id: id}, value));
        }
        if (!id) {
            box.replaceChildren();
            return;
        }
        if (!dataset) {
            box.replaceChildren(el('dd', {className: 'col-12 text-muted', id: 'dataset-not-done'},
                'This dataset is still being created; the model waits for it.'));
            return;
        }
        const dims = dataset.image_dimensions || [];
        row('Image size', dims.length ? dims[1] + ' \u00d7 ' + dims[0] + ' (' + (dims[2] === 1 ? 'grayscale' : dims[2] === 3 ? 'color' : dims[2] + ' channels') + ')' : '\u2014', 'dataset-size');
        row('Classes', dataset.nclasses != null ? String(dataset.nclasses) : '\u2014', 'dataset-classes');
        const entries = dataset.entries || {};
        const stages = Object.keys(entries).filter(function (s) { return entries[s] != null; });
        row('Entries', stages.length ? stages.map(function (s) {
            return (s === 'train' ? 'train' : s === 'val' ? 'val' : s) + ' ' + DIGITS.formatNumber(entries[s]);
        }).join(', ') : '\u2014', 'dataset-entries');
        rows.push(el('dd', {className: 'col-12 mb-0'}, el('a', {
            href: DIGITS.url('/datasets/' + encodeURIComponent(dataset.id)), target: '_blank', rel: 'noopener',
        }, 'View dataset')));
        box.replaceChildren.apply(box, rows);
    }

    /* ---------- what is shown depends on other fields ---------- */

    function checkedValue(name, fallback) {
        const checked = form.querySelector('input[name="' + name + '"]:checked');
        return checked ? checked.value : fallback;
    }

    function showMethod() {
        const method = checkedValue('method', 'standard');
        form.querySelectorAll('.method-pane').forEach(function (pane) {
            pane.hidden = pane.dataset.method !== method;
        });
        form.querySelectorAll('.method-tabs .nav-link').forEach(function (label) {
            const input = byId(label.getAttribute('for'));
            label.classList.toggle('active', !!(input && input.checked));
            label.setAttribute('aria-selected', input && input.checked ? 'true' : 'false');
        });
    }

    /* ---------- the framework tab: its standard networks, what its network must define ---------- */

    function chosenFramework() {
        const id = checkedValue('framework', 'tensorflow');
        return FRAMEWORKS.find(function (f) { return f.id === id; }) || FRAMEWORKS[0] || {id: id, networks: []};
    }

    function showFramework() {
        const framework = chosenFramework();
        let checkedHidden = false;
        form.querySelectorAll('#standard-networks-table tr[data-network]').forEach(function (row) {
            row.hidden = (framework.networks || []).indexOf(row.dataset.network) < 0;
            const radio = row.querySelector('input[name="standard_networks"]');
            if (row.hidden && radio && radio.checked) checkedHidden = true;
        });
        // A network the framework lacks stays unchosen: its first one is picked instead.
        const first = form.querySelector('#standard-networks-table tr[data-network]:not([hidden]) input[name="standard_networks"]');
        if (checkedHidden && first) first.checked = true;
        byId('custom-network-contract').textContent = framework.contract ? framework.title + ': ' + framework.contract : '';
        // Disabled fields are not sent: another framework's tool never gets an option it lacks.
        form.querySelectorAll('.framework-only').forEach(function (group) {
            const shown = group.dataset.frameworks.split(' ').indexOf(framework.id) >= 0;
            group.hidden = !shown;
            group.querySelectorAll('input, select, textarea').forEach(function (field) { field.disabled = !shown; });
        });
        showMethod();
    }

    function showDependent() {
        form.querySelectorAll('.reveal').forEach(function (group) {
            const box = byId(group.dataset.when);
            group.hidden = !(box && box.checked);
        });
        byId('rms-decay-group').hidden = byId('solver_type').value !== 'RMSPROP';
        const policy = byId('lr_policy').value;
        form.querySelectorAll('.policy-params').forEach(function (group) {
            group.hidden = group.dataset.policy !== policy;
        });
        renderSweepNote();
        renderAugmentationSummary();
    }

    function countList(id) {
        const node = byId(id);
        return node ? node.value.split(',').filter(function (s) { return s.trim(); }).length : 0;
    }

    function renderSweepNote() {
        const n = Math.max(1, countList('learning_rate')) * Math.max(1, countList('batch_size'));
        byId('sweep-note').textContent = n > 1 ? 'Sweep: creates ' + n + ' jobs, one per learning rate and batch size.' : '';
        byId('create-button').textContent = n > 1 ? 'Create ' + n : 'Create';
    }

    function renderAugmentationSummary() {
        const on = [];
        if (byId('aug_flip').value !== 'none') on.push('flip');
        if (byId('aug_quad_rot').value !== 'none') on.push('quad. rotation');
        [['aug_rot', 'rotation'], ['aug_scale', 'rescale'], ['aug_noise', 'noise'], ['aug_contrast', 'contrast']].forEach(function (p) {
            if (parseFloat(byId(p[0]).value) > 0) on.push(p[1]);
        });
        if (byId('aug_whitening').checked) on.push('whitening');
        if (byId('aug_hsv_use').checked) on.push('HSV');
        byId('augmentation-summary').textContent = on.length ? '(' + on.join(', ') + ')' : '(none)';
    }

    /* ---------- learning-rate preview ---------- */

    const lrChart = DIGITS.chart('lr-chart', {
        options: DIGITS.chart.overEpochs('learning rate', {
            plugins: {
                legend: {display: false},
                tooltip: {callbacks: {label: function (item) { return 'learning rate ' + DIGITS.formatMetric(item.parsed.y); }}},
            },
            scales: {y: {beginAtZero: true}},
        }),
    });
    let lrRequest = 0;
    function solverParams() {
        const policy = byId('lr_policy').value;
        const params = new URLSearchParams({
            learning_rate: byId('learning_rate').value,
            train_epochs: byId('train_epochs').value,
            lr_policy: policy,
        });
        // Only the chosen policy's fields: a half-typed value elsewhere must not break the preview.
        form.querySelectorAll('.policy-params[data-policy="' + policy + '"] [name]').forEach(function (input) {
            params.set(input.name, input.value);
        });
        return params;
    }

    async function updateLrChart() {
        const note = byId('lr-chart-note');
        const request = ++lrRequest;
        let curve;
        try {
            curve = await DIGITS.fetchJSON(LR_PREVIEW_URL + (LR_PREVIEW_URL.indexOf('?') < 0 ? '?' : '&') + solverParams().toString());
        } catch (error) {
            if (request === lrRequest) {
                note.textContent = 'No preview for these values: ' + error.message;
                note.classList.add('text-danger');
            }
            return;
        }
        if (request !== lrRequest || !curve) return;   // an older answer arriving late
        note.classList.remove('text-danger');
        const rates = curve.lr || [];
        const learningRates = byId('learning_rate').value.split(',').filter(function (s) { return s.trim(); });
        note.textContent = learningRates.length > 1 ? 'Shown for the first learning rate, ' + learningRates[0].trim() + '.' : '';
        const points = (curve.epochs || []).map(function (x, i) { return {x: x, y: rates[i]}; });
        lrChart.draw({datasets: [{label: 'learning rate', data: points, borderColor: '#0d6efd', backgroundColor: '#0d6efd',
                                  borderWidth: 2, pointRadius: 0, tension: 0, fill: false}]});
    }
    const scheduleLrChart = DIGITS.debounce(updateLrChart, 300);
    const LR_FIELDS = ['learning_rate', 'train_epochs', 'lr_policy', 'lr_step_size', 'lr_step_gamma', 'lr_multistep_values',
                       'lr_multistep_gamma', 'lr_exp_gamma', 'lr_inv_gamma', 'lr_inv_power', 'lr_poly_power',
                       'lr_sigmoid_step', 'lr_sigmoid_gamma'];

    /* ---------- networks ---------- */

    const editor = byId('custom_network');
    const code = DIGITS.codeEditor(editor);
    let editorDirty = false;   // typed in since the last Customize: ask before replacing
    editor.addEventListener('input', function () { editorDirty = true; });
    // Our standard networks carry lint comments for our own checks; they mean nothing in the user's network.
    function withoutLintComments(source) {
        return source.split('\n').map(function (line) {
            return line.replace(/\s*#\s*(ruff:|noqa\b|fmt:|type:\s*ignore|pylint:).*$/, '');
        }).filter(function (line, i, lines) {
            return line.trim() !== '' || (lines[i - 1] || '').trim() !== '' || i === 0;   // no doubled blank lines
        }).join('\n');
    }

    function chooseMethod(method) {
        const radio = form.querySelector('input[name="method"][value="' + method + '"]');
        if (radio) {
            radio.checked = true;
            showMethod();
        }
    }

    form.querySelectorAll('.customize-link').forEach(function (link) {
        link.addEventListener('click', async function (event) {
            event.preventDefault();
            const name = link.dataset.network;
            if (editorDirty && code.value().trim()
                    && !window.confirm('Replace your custom network with the source of ' + name + '?')) return;
            const status = byId('custom-network-status');
            link.classList.add('disabled');
            try {
                const url = NETWORK_SOURCE_URL.replace('__NAME__', encodeURIComponent(name))
                    + '?framework=' + encodeURIComponent(chosenFramework().id);
                const response = await fetch(url, {credentials: 'same-origin', headers: {'Accept': 'text/plain'}});
                if (!response.ok) throw new Error(response.status + ' ' + (response.statusText || 'error'));
                const source = withoutLintComments(await response.text());
                chooseMethod('custom');
                code.setValue(source);
                editorDirty = false;
                status.textContent = 'Started from ' + name + ' (' + chosenFramework().title + ')';
            } catch (error) {
                DIGITS.alert('Could not load the source of ' + name + ': ' + error.message);
            } finally {
                link.classList.remove('disabled');
            }
        });
    });

    // One snapshot select for the chosen previous model, when the form has it.
    function renderPreviousSnapshots() {
        const select = byId('previous_network_snapshot');
        if (!select) return;
        const id = checkedValue('previous_networks', null);
        const model = PREVIOUS_MODELS.find(function (m) { return m.id === id; });
        const wanted = select.value || select.dataset.value;
        const epochs = model ? (model.snapshots || []).slice().reverse() : [];
        select.replaceChildren.apply(select, epochs.length ? epochs.map(function (epoch) {
            const option = el('option', {value: String(epoch)}, 'Epoch ' + DIGITS.formatEpoch(epoch));
            option.selected = String(epoch) === String(wanted);
            return option;
        }) : [el('option', {value: ''}, model ? 'No snapshot' : 'Choose a model')]);
    }

    /* ---------- Visualize: the custom network's layers, built for the chosen dataset's images ---------- */

    function renderVisualizeFor() {
        const dataset = DATASETS.find(function (d) { return d.id === byId('dataset').value; });
        byId('visualize-shape-fields').classList.toggle('d-none', !!dataset);
        byId('visualize-for').textContent = dataset ? 'for the images of ' + dataset.name : 'for a batch of images of';
    }
    DIGITS.visualizeNetwork({
        url: DIGITS.url('/models/visualize-network.json'), button: byId('visualize-button'), editor: editor,
        result: byId('visualize-result'),
        fields: function () {
            const data = new FormData();
            data.set('custom_network', code.value());
            data.set('framework', chosenFramework().id);
            const dataset = DATASETS.find(function (d) { return d.id === byId('dataset').value; });
            if (dataset) data.set('dataset', dataset.id);
            else {
                data.set('input_shape', byId('visualize-input-shape').value);
                data.set('nclasses', byId('visualize-nclasses').value);
            }
            if (byId('crop_size').value) data.set('crop_size', byId('crop_size').value);
            return data;
        },
    });

    /* ---------- GPUs: a count or a list, not both ---------- */

    const gpuCount = byId('select_gpu_count');
    const gpuList = byId('select_gpus');
    if (gpuCount && gpuList) {
        gpuList.addEventListener('change', function () {
            if (gpuList.selectedOptions.length) gpuCount.value = '';
        });
        gpuCount.addEventListener('input', function () {
            if (gpuCount.value !== '') Array.from(gpuList.options).forEach(function (o) { o.selected = false; });
        });
    }

    /* ---------- events ---------- */

    form.addEventListener('change', function (event) {
        const name = event.target.name;
        if (name === 'method') showMethod();
        if (name === 'framework') showFramework();
        if (name === 'dataset') { renderDataset(); renderVisualizeFor(); }
        if (name === 'previous_networks') renderPreviousSnapshots();
        showDependent();
        if (LR_FIELDS.indexOf(name) >= 0) scheduleLrChart();
    });
    form.addEventListener('input', function (event) {
        if (LR_FIELDS.indexOf(event.target.name) >= 0) scheduleLrChart();
        if (event.target.name === 'learning_rate' || event.target.name === 'batch_size') renderSweepNote();
    });
    form.addEventListener('submit', function () {
        const button = byId('create-button');
        // Disable after the browser has collected the button's name=value.
        setTimeout(function () { button.disabled = true; button.textContent = 'Creating\u2026'; }, 0);
    });

    DIGITS.suggestCloneName(form.elements.model_name);
    DIGITS.keepFormAcrossLogin(form);
    renderDataset();
    renderVisualizeFor();
    showFramework();
    showDependent();
    renderPreviousSnapshots();
    updateLrChart();
    // Land on the first field with an error, even when it is in a hidden tab or the collapsed panel.
    const firstInvalid = form.querySelector('.is-invalid');
    if (firstInvalid) firstInvalid.scrollIntoView({block: 'center'});
})();
