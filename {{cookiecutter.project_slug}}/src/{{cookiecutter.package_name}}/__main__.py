from {{ cookiecutter.package_name }}.cli import app

app(prog_name="python -m {{ cookiecutter.package_name }}")
