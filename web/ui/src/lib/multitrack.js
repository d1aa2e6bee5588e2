// The dashboard's section on OBS's multitrack video ("Enhanced Broadcasting"): OBS encodes
// several qualities itself after asking onair's configuration URL which ones suit the
// streamer's computer (POST /api/v1/obs/config, authenticated by the stream key), so
// viewers get a quality menu without onair transcoding anything. The section says how to
// turn it on in each OBS version, and sets the room's cap on the ladder's bitrate.
import { h, copyText } from './dom.js';
import { api } from './api.js';
import { section, showError } from './forms.js';

// copyRow is a read-only field with a Copy button, like the server and key fields.
function copyRow(id, value, attr) {
  const input = h('input', { id, readonly: true, value, [attr]: '', spellcheck: 'false' });
  const copy = h('button', { type: 'button', [`${attr}-copy`]: '' }, 'Copy');
  copy.addEventListener('click', () => copyText(value, copy));
  return h('div', { class: 'row' }, input, copy);
}

export function multitrackSection(room) {
  const url = room.obs_config_url;
  const launch = `--config-url ${url}`;
  const err = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const ok = h('p', { class: 'ok', role: 'status' });
  const form = h('form', { class: 'stack', novalidate: true, 'data-max-ladder-form': '' },
    h('label', { for: 'max-ladder' }, 'Most bandwidth for all qualities together ',
      h('span', { class: 'muted' }, `(kbit/s, audio included; 0 uses the server default, ${room.default_max_ladder_kbps} kbit/s)`)),
    h('div', { class: 'row' },
      h('input', { id: 'max-ladder', name: 'max_ladder_kbps', type: 'number', min: 0, max: 100000, value: String(room.max_ladder_kbps || 0) }),
      h('button', { type: 'submit' }, 'Save')),
    err, ok);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    ok.textContent = '';
    try {
      const r = await api('PATCH', `/api/v1/rooms/${encodeURIComponent(room.slug)}`, {
        max_ladder_kbps: Number(new FormData(form).get('max_ladder_kbps')) || 0,
      });
      Object.assign(room, r);
      err.hidden = true;
      ok.textContent = 'Saved: OBS gets it when it next goes live.';
    } catch (ex) {
      showError(err, ex, form);
    }
  });
  return section('Multiple qualities with OBS (Enhanced Broadcasting)', 'multitrack-h',
    h('p', { class: 'muted' }, 'OBS can encode several qualities at once (multitrack video), and viewers on a slow connection then get a smaller one. '
      + 'onair tells OBS which qualities your computer can encode (three with an NVIDIA, AMD or Apple encoder, fewer on the CPU alone), all with 1 s key frames.'),
    h('ol', { 'data-multitrack-steps': '' },
      h('li', null, 'In OBS: Settings → Stream → Service “Custom…”, with the server and stream key above.'),
      h('li', null, h('label', { for: 'obs-config-launch' }, 'OBS 30.2 to 32.1: start OBS with this launch option, which gives it the configuration URL'),
        ' (Windows: add it to the OBS shortcut’s Target; macOS: ', h('code', null, 'open -a OBS --args …'), '; Linux: ', h('code', null, 'obs …'), '):',
        copyRow('obs-config-launch', launch, 'data-obs-config-launch')),
      h('li', null, 'Tick “Enable Multitrack Video” under the stream key, and leave Maximum Streaming Bandwidth and Maximum Video Tracks on Auto (or lower them). '
        + 'OBS 30.2 to 32.0.0 show that box for the Custom service only when also started with ', h('code', null, '--enable-multitrack-video-dev'), '.'),
      h('li', null, 'Start streaming: OBS posts your computer’s encoders and your stream key to the configuration URL and encodes what it answers.')),
    h('label', { for: 'obs-config-url' }, 'Configuration URL'),
    copyRow('obs-config-url', url, 'data-obs-config-url'),
    overridePart(room),
    form);
}

// overridePart makes the fixed configuration that OBS 32.2 and later need instead: they read
// no configuration URL for the Custom service, only JSON pasted into Config Override.
function overridePart(room) {
  const select = (id, name, options) => h('select', { id, name },
    ...options.map(([value, label]) => h('option', { value }, label)));
  const hardware = select('override-hw', 'hardware', [['nvidia', 'NVIDIA GPU (NVENC)'], ['amd', 'AMD GPU (Windows)'], ['apple', 'Apple silicon Mac'],
    ['cpu8', 'CPU only, 8 cores or more'], ['cpu4', 'CPU only, 4 to 7 cores'], ['cpu2', 'CPU only, fewer cores']]);
  const output = select('override-out', 'output', [['1080p60', '1080p 60 fps'], ['1080p30', '1080p 30 fps'], ['720p60', '720p 60 fps'], ['720p30', '720p 30 fps']]);
  const err = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const result = h('div', { class: 'stack', 'data-obs-override-result': '' });
  const form = h('form', { class: 'stack', novalidate: true, 'data-obs-override-form': '' },
    h('p', null, 'OBS 32.2 and later read no configuration URL for the Custom service. There, tick “Enable Config Override” under “Enable Multitrack Video” and paste a configuration made for your computer:'),
    h('label', { for: 'override-hw' }, 'Your encoder'), hardware,
    h('label', { for: 'override-out' }, 'OBS’s output (Settings → Video)'), output,
    h('button', { type: 'submit' }, 'Make the configuration'), err, result);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    try {
      const cfg = await api('GET', `/api/v1/rooms/${encodeURIComponent(room.slug)}/obs-config?hardware=${f.get('hardware')}&output=${f.get('output')}`);
      const text = JSON.stringify(cfg, null, 2);
      const area = h('textarea', { id: 'obs-override', readonly: true, rows: 8, 'data-obs-override': '', spellcheck: 'false' });
      area.value = text;
      const copy = h('button', { type: 'button', 'data-obs-override-copy': '' }, 'Copy');
      copy.addEventListener('click', () => copyText(text, copy));
      err.hidden = true;
      result.replaceChildren(h('label', { for: 'obs-override' }, `Config Override (JSON): ${cfg.encoder_configurations.length} qualities`), area, copy);
    } catch (ex) {
      showError(err, ex, form);
    }
  });
  return form;
}
