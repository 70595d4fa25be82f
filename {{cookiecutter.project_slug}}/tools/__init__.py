"""The template's own tooling, run from the project root: {% if cookiecutter.include_benchmark == "yes" %}the benchmark, {% endif %}scratch
copies of the project, the CI report and the DAG publisher. Not part of the ML package
(src/{{ cookiecutter.package_name }}): nothing in the pipeline imports it."""
