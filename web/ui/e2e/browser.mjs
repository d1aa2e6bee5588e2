// Launches Debian's Chromium (not a Playwright download: none can be fetched here) headless,
// with the flags that keep it quiet and self-contained, and extraArgs. Playwright gives
// every launch a fresh temporary profile (--user-data-dir) and removes it on close.
import { chromium } from 'playwright-core';

export const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

export function launch(extraArgs = []) {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
      ...extraArgs,
    ],
  });
}
