/* The Download menu of a model or pretrained model page (templates/models/download.html). */
(function () {
    'use strict';
    const menu = document.getElementById('download-menu');
    const base = menu.dataset.base;
    const select = document.getElementById('download-snapshot');

    function chosenEpoch() { return select && select.value ? select.value : ''; }

    // Every link carries the chosen snapshot (none: the last one).
    menu.querySelectorAll('.download-link').forEach(function (link) {
        link.addEventListener('click', function () {
            const epoch = chosenEpoch();
            const href = link.dataset.href;
            link.href = epoch ? href + (href.indexOf('?') < 0 ? '?' : '&') + 'snapshot_epoch=' + encodeURIComponent(epoch) : href;
        });
    });

    // The export form sends the chosen snapshot too.
    document.getElementById('export-form').addEventListener('submit', function () {
        document.getElementById('export-snapshot').value = chosenEpoch();
    });

    // A model's snapshots grow while it trains: read them again when the menu opens, keeping the choice.
    if (select) menu.addEventListener('show.bs.dropdown', async function () {
        let job;
        try { job = await DIGITS.fetchJSON(base + '.json'); } catch (error) { return; }
        const epochs = job.snapshots || [];
        const chosen = select.selectedIndex > 0 ? select.value : null;
        select.replaceChildren.apply(select, epochs.slice().reverse().map(function (epoch, i) {
            return DIGITS.el('option', {value: epoch}, 'epoch ' + DIGITS.formatEpoch(epoch) + (i === 0 ? ' (last)' : ''));
        }));
        if (chosen !== null) select.value = chosen;
        document.getElementById('download-empty').classList.toggle('d-none', epochs.length > 0);
        document.getElementById('download-forms').classList.toggle('d-none', epochs.length === 0);
    });

    const form = document.getElementById('make-pretrained-form');
    if (form) form.addEventListener('submit', async function (event) {
        event.preventDefault();
        const button = document.getElementById('make-pretrained-button');
        const body = new FormData(form);
        body.append('snapshot_epoch', chosenEpoch());
        button.disabled = true;
        try {
            const made = await DIGITS.fetchJSON(base + '/make_pretrained.json', {method: 'POST', body: body});
            window.location.href = made.url;
        } catch (error) {
            DIGITS.alert('Could not make a pretrained model: ' + error.message);
            button.disabled = false;
        }
    });
})();
