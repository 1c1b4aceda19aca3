// What some of JupyterLab's dependencies expect of Node's `process` in a browser (webpack's
// builder provides the same). No `argv`: PageConfig would take that for Node and skip the page.
export const process = { env: {}, cwd: () => '/', platform: 'browser', version: '', versions: {}, nextTick: (f, ...a) => Promise.resolve().then(() => f(...a)) };
