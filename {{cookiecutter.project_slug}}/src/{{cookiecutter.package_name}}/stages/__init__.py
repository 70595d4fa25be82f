"""One module per `dvc.yaml` stage, each with one entry function `run`.

The CLI (`python -m {{ cookiecutter.package_name }} <stage>`) parses arguments, loads
params.yaml and calls `run` with the stage's own configuration; everything a
stage does beyond reading and writing its files lives in the shared modules
beside this package (features, model, gates, feature_store, ...).
"""
