"""Validate cookiecutter answers before anything is written.

Cookiecutter renders this file with Jinja first, so it stays valid Python both
before and after rendering.
"""

from __future__ import annotations

import keyword
import re
import sys

ANSWERS = {
    "project_slug": "{{ cookiecutter.project_slug }}",
    "package_name": "{{ cookiecutter.package_name }}",
    "s3_bucket": "{{ cookiecutter.s3_bucket }}",
    "s3_endpoint_url": "{{ cookiecutter.s3_endpoint_url }}",
    "s3_region": "{{ cookiecutter.s3_region }}",
}

PACKAGE_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
REGION_RE = re.compile(r"^[a-z0-9-]+$")


def problems(answers: dict[str, str]) -> list[str]:
    found = []
    package = answers["package_name"]
    if not PACKAGE_RE.match(package) or keyword.iskeyword(package):
        found.append(
            f"package_name {package!r} is not a valid lowercase Python identifier "
            "(letters, digits and underscores, not starting with a digit, not a keyword); "
            "e.g. package_name=churn_model"
        )
    if package in {"src", "test", "tests", "dags", "features"}:
        found.append(f"package_name {package!r} clashes with a project folder; choose another name")
    slug = answers["project_slug"]
    if not SLUG_RE.match(slug):
        found.append(
            f"project_slug {slug!r} must be lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    bucket = answers["s3_bucket"]
    if not BUCKET_RE.match(bucket) or ".." in bucket:
        found.append(
            f"s3_bucket {bucket!r} is not a valid S3 bucket name "
            "(3-63 characters: lowercase letters, digits, '.', '-')"
        )
    endpoint = answers["s3_endpoint_url"]
    if endpoint and not re.match(r"^https?://[^\s/]+(:\d+)?/?$", endpoint):
        found.append(
            f"s3_endpoint_url {endpoint!r} must be empty (AWS) or like http://127.0.0.1:9000"
        )
    if not REGION_RE.match(answers["s3_region"]):
        found.append(f"s3_region {answers['s3_region']!r} is not a region name such as us-east-1")
    return found


if __name__ == "__main__":
    errors = problems(ANSWERS)
    if errors:
        print("ERROR: cannot generate the project:", file=sys.stderr)
        for error in errors:
            print(f"  - {error}", file=sys.stderr)
        sys.exit(1)
