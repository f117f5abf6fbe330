/* The "Use the model" card of a model or pretrained model page (templates/models/use_model.html). */
(function () {
    'use strict';
    const select = document.getElementById('use-snapshot');
    // The model page calls this as snapshots arrive: newest first, keeping the user's choice.
    DIGITS.useModelSnapshots = function (epochs) {
        if (select.options.length === epochs.length) return;
        const chosen = select.selectedIndex > 0 ? select.value : null;
        select.replaceChildren.apply(select, epochs.slice().reverse().map(function (epoch, i) {
            return DIGITS.el('option', {value: epoch}, 'epoch ' + DIGITS.formatEpoch(epoch) + (i === 0 ? ' (last)' : ''));
        }));
        if (chosen !== null) select.value = chosen;
        document.getElementById('use-model-empty').classList.toggle('d-none', epochs.length > 0);
        document.getElementById('use-model-forms').classList.toggle('d-none', epochs.length === 0);
    };
    // A view's config form shows when the view is picked.
    document.querySelectorAll('.view-select').forEach(function (select) {
        select.addEventListener('change', function () {
            select.closest('form').querySelectorAll('.view-config').forEach(function (box) {
                box.classList.toggle('d-none', box.dataset.view !== select.value);
            });
        });
    });
    // Every form sends the snapshot chosen above (empty: the last one).
    document.querySelectorAll('.use-model-form').forEach(function (form) {
        form.addEventListener('submit', function () {
            form.elements.snapshot_epoch.value = select.value;
        });
    });
})();
