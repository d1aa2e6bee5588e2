// The pages without video: home, log in, sign up, the dashboard, the settings and the
// admin console.
import { $ } from './lib/dom.js';
import { initSite } from './lib/site.js';
import { authForm } from './lib/auth.js';
import { dashboard } from './lib/dashboard.js';
import { settings } from './lib/settings.js';
import { adminConsole } from './lib/admin.js';

initSite();
const page = document.body.dataset.page;
if (page === 'login' || page === 'signup') authForm($('[data-auth]'));
else if (page === 'dashboard') dashboard($('[data-dashboard]'));
else if (page === 'settings') settings($('[data-settings]'));
else if (page === 'admin') adminConsole($('[data-admin-console]'));
