// A live stream's quality ladder changes while viewers watch: a simulcast rendition
// (?rendition=) joins a little after the main one, once its key frames proved aligned
// (media/rendition.go), or leaves when its encoder output stops. hls.js reads the
// multivariant playlist once, so the player must notice the change and hand it over.
//
// How it notices, and why so: every LL-HLS media playlist onair serves carries a
// RENDITION-REPORT of each other rendition on offer (media/hls/ladder.go), and hls.js
// reloads the playlist it plays with every part anyway. Comparing those reports with
// hls.js's levels costs no request at all while the ladder stays as it is; only a change
// costs one read of the multivariant playlist per viewer, which a CDN collapses (it may
// keep it for a second). Polling the multivariant playlist instead would cost every
// viewer a request per interval for the whole broadcast, through the CDN to the origin
// once per interval and edge, and notice later; telling pages over the chat socket would
// miss /watch pages and embeds (no chat there) and need the node with the stream to write
// chat events for a change of its own state.

const abs = (uri, base) => {
  try {
    return new URL(uri, base).href;
  } catch {
    return '';
  }
};

// ladderChange compares what the playlist of level (just loaded, details) reports on offer
// with hls.js's levels: joined are URLs of renditions hls.js does not have, left the
// indexes of its levels no longer offered. null when there is nothing to compare.
export function ladderChange(hls, level, details) {
  const playing = hls.levels[level];
  if (!playing || !details || !details.live) return null;
  const audio = new Set((hls.audioTracks || []).map((t) => abs(t.url, location.href)));
  const offered = new Set([abs(playing.uri, location.href)]);
  for (const r of details.renditionReports || []) {
    const u = abs(r.URI || '', details.url);
    if (u && !audio.has(u)) offered.add(u);
  }
  const known = hls.levels.map((l) => abs(l.uri, location.href));
  const joined = [...offered].filter((u) => !known.includes(u));
  const left = known.map((u, i) => (offered.has(u) ? -1 : i)).filter((i) => i >= 0);
  return joined.length || left.length ? { joined, left } : null;
}

// streamLive tells whether any of the levels other than skip still has a live playlist:
// when the playlist being played ends, that is the difference between a rendition
// leaving and the stream ending. It reads each other playlist once, without blocking.
export async function streamLive(levels, skip) {
  for (let i = 0; i < levels.length; i++) {
    if (i === skip) continue;
    try {
      const res = await fetch(levels[i].uri, { cache: 'no-store' });
      if (res.ok && !(await res.text()).includes('#EXT-X-ENDLIST')) return true;
    } catch {
      // Unreachable: count it as ended; the others decide.
    }
  }
  return false;
}
