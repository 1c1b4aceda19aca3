/**
 * The JupyterLab plugins this front end is made of: enough to browse files, edit and run
 * notebooks, and draw what the notebooks show (vega, plotly, JSON, HTML). Shared by the
 * entry (src/index.js) and build.js, which copies their schemas and themes.
 */
module.exports = {
  extensions: [
    '@jupyterlab/application-extension', '@jupyterlab/apputils-extension', '@jupyterlab/codemirror-extension',
    '@jupyterlab/completer-extension', '@jupyterlab/console-extension', '@jupyterlab/docmanager-extension',
    '@jupyterlab/filebrowser-extension', '@jupyterlab/fileeditor-extension',
    '@jupyterlab/launcher-extension', '@jupyterlab/mainmenu-extension', '@jupyterlab/notebook-extension',
    '@jupyterlab/rendermime-extension', '@jupyterlab/running-extension', '@jupyterlab/shortcuts-extension',
    '@jupyterlab/statusbar-extension', '@jupyterlab/theme-light-extension', '@jupyterlab/tooltip-extension',
    '@jupyterlab/translation-extension', '@jupyterlab/ui-components-extension',
  ],
  mimeExtensions: [
    '@jupyterlab/javascript-extension', '@jupyterlab/json-extension', '@jupyterlab/vega5-extension',
    'jupyterlab-plotly/lib/plotly-renderer',
  ],
  // Needs the jupyterlab Python package's /lab/api/news and /lab/api/update, which Debian's server lacks.
  disabledPlugins: ['@jupyterlab/apputils-extension:announcements'],
};
