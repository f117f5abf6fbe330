/* The New Dataset form (templates/datasets/new.html): method panes, revealed fields, the resize preview. */
(function () {
    'use strict';
    const form = document.getElementById('dataset-form');
    const byId = function (id) { return document.getElementById(id); };

    /* Method: show the pane of the chosen method. */
    function showMethod() {
        const checked = form.querySelector('input[name="method"]:checked');
        const method = checked ? checked.value : 'folder';
        form.querySelectorAll('.method-pane').forEach(function (pane) {
            pane.hidden = pane.dataset.method !== method;
        });
    }

    /* Checkboxes that reveal a group of fields. */
    function showRevealed() {
        form.querySelectorAll('.reveal').forEach(function (group) {
            const box = byId(group.dataset.when);
            group.hidden = !(box && box.checked);
        });
        const local = byId('textfile_use_local_files');
        const useLocal = !!(local && local.checked);
        form.querySelectorAll('.local-only').forEach(function (el) { el.hidden = !useLocal; });
        form.querySelectorAll('.upload-only').forEach(function (el) { el.hidden = useLocal; });
    }

    /* Live preview of the resize transformation. */
    const preview = byId('resize-preview');
    const caption = byId('resize-preview-caption');
    const previewBase = DIGITS.pageData().resize_example_url;
    function updatePreview() {
        const width = parseInt(byId('resize_width').value, 10);
        const height = parseInt(byId('resize_height').value, 10);
        if (!(width > 0 && height > 0)) {
            caption.textContent = 'Enter a width and a height to see an example';
            return;
        }
        const params = new URLSearchParams({
            width: width, height: height,
            mode: byId('resize_mode').value,
            channels: byId('resize_channels').value,
        });
        preview.style.opacity = 0.5;
        preview.src = previewBase + '?' + params.toString();
    }
    preview.addEventListener('load', function () {
        preview.style.opacity = 1;
        caption.textContent = 'Example: ' + preview.naturalWidth + ' \u00d7 ' + preview.naturalHeight + ', '
            + byId('resize_mode').selectedOptions[0].text.toLowerCase();
    });
    preview.addEventListener('error', function () {
        preview.style.opacity = 1;
        caption.textContent = 'No preview for these values';
    });
    const schedulePreview = DIGITS.debounce(updatePreview, 300);
    ['resize_width', 'resize_height', 'resize_mode', 'resize_channels'].forEach(function (id) {
        byId(id).addEventListener('input', schedulePreview);
        byId(id).addEventListener('change', schedulePreview);
    });

    form.addEventListener('change', function (event) {
        if (event.target.name === 'method') showMethod();
        if (event.target.type === 'checkbox') showRevealed();
    });
    form.addEventListener('submit', function () {
        const button = byId('create-button');
        // Disable after the browser has collected the button's name=value.
        setTimeout(function () { button.disabled = true; button.textContent = 'Creating\u2026'; }, 0);
    });

    DIGITS.suggestCloneName(form.elements.dataset_name);
    DIGITS.keepFormAcrossLogin(form);
    showMethod();
    showRevealed();
})();
