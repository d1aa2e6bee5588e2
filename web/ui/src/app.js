// The pages without video: home, log in, sign up and the dashboard.
import { $ } from './lib/dom.js';
import { initSite } from './lib/site.js';
import { authForm } from './lib/auth.js';
import { dashboard } from './lib/dashboard.js';

initSite();
const page = document.body.dataset.page;
if (page === 'login' || page === 'signup') authForm($('[data-auth]'));
else if (page === 'dashboard') dashboard($('[data-dashboard]'));
