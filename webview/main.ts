/** Dashboard webview entry (browser bundle). The dashboard UI is built on the event protocol. */
const root = document.getElementById('app');
if (root) root.textContent = 'Sculpt dashboard';
