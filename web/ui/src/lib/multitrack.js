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
      h('li', null, h('label', { for: 'obs-config-launch' }, 'Start OBS with this launch option, which gives it the configuration URL'),
        ' (Windows: add it to the OBS shortcut’s Target; macOS: ', h('code', null, 'open -a OBS --args …'), '; Linux: ', h('code', null, 'obs …'), '):',
        copyRow('obs-config-launch', launch, 'data-obs-config-launch')),
      h('li', null, 'Tick “Enable Multitrack Video” under the stream key, and leave Maximum Streaming Bandwidth and Maximum Video Tracks on Auto (or lower them). '
        + 'OBS 30.2 to 32.0.0 show that box for the Custom service only when also started with ', h('code', null, '--enable-multitrack-video-dev'), '.'),
      h('li', null, 'Start streaming: OBS posts your computer’s encoders and your stream key to the configuration URL and encodes what it answers.')),
    h('label', { for: 'obs-config-url' }, 'Configuration URL'),
    copyRow('obs-config-url', url, 'data-obs-config-url'),
    h('p', { class: 'muted' }, 'OBS 32.2 and later no longer read a configuration URL for the Custom service: there multitrack video only takes a fixed configuration pasted into “Config Override (JSON)”.'),
    form);
}
