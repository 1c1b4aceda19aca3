#!/usr/bin/python3
"""JupyterLab 3.6, built from npm into build/ (build.js), served by Debian's jupyter-server
1.23 and jupyterlab-server 2.16: JupyterLab without pip.

    /usr/bin/python3 lab-app/main.py [--ServerApp.root_dir=DIR] [--ServerApp.port=8888] ...

Needs `apt-get install python3-jupyter-server python3-jupyterlab-server` and a built front
end (`npm ci --prefix lab-app && npm run --prefix lab-app build`). Kernels are Jupyter's
usual kernelspecs (npm start registers this project's tslab).
"""
import json
import os
import sys

os.environ['JUPYTER_NO_CONFIG'] = '1'  # Debian's /etc/jupyter server extensions stay out
HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(HERE, 'build')

try:
    from jupyterlab_server import LabServerApp
except ImportError:
    sys.exit('lab-app: jupyterlab_server is missing; apt-get install python3-jupyter-server python3-jupyterlab-server')
if not os.path.exists(os.path.join(BUILD, 'bundle.js')):
    sys.exit(f'lab-app: {BUILD}/bundle.js is missing; run npm ci --prefix lab-app && npm run --prefix lab-app build')


def _jupyter_server_extension_points():
    return [{'module': __name__, 'app': NinLabApp}]


class NinLabApp(LabServerApp):
    name = 'nin_lab'
    extension_url = '/lab'
    default_url = '/lab'
    load_other_extensions = False
    app_name = 'JupyterLab'
    app_version = json.load(open(os.path.join(HERE, 'node_modules', '@jupyterlab', 'application', 'package.json')))['version']
    app_settings_dir = os.path.join(BUILD, 'application_settings')
    schemas_dir = os.path.join(BUILD, 'schemas')
    static_dir = BUILD
    templates_dir = os.path.join(HERE, 'templates')
    themes_dir = os.path.join(BUILD, 'themes')
    user_settings_dir = os.path.join(BUILD, 'user_settings')
    workspaces_dir = os.path.join(BUILD, 'workspaces')

    def initialize_handlers(self):
        # What the jupyterlab package's LabApp adds to the page: the token, and no build checks.
        page = self.serverapp.web_app.settings.setdefault('page_config_data', {})
        page.update(token=self.serverapp.token, buildAvailable=False, buildCheck=False)
        super().initialize_handlers()

    def initialize_settings(self):
        super().initialize_settings()
        self.serverapp.web_app.settings['terminals_available'] = False


if __name__ == '__main__':
    NinLabApp.launch_instance()
