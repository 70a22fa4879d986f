"""Checks samconfig.toml and infra/params/<env>.json against template.yaml: each environment
sets only the template's parameters, every parameter without a default, values the template
allows (AllowedValues, AllowedPattern, MinValue/MaxValue), the same in both files, an
image repository for the container-image functions, and builds in source (the makefile
builder: no beta features).

usage: check_deploy_config.py TEMPLATE SAMCONFIG PARAMS_DIR   (exit 1 and a line per problem)"""
import json
import os
import re
import sys
import tomllib

from cfnlint.decode import cfn_yaml


def main(template_path, samconfig_path, params_dir):
    template = cfn_yaml.load(template_path)
    parameters = template.get("Parameters", {})
    with open(samconfig_path, "rb") as f:
        config = tomllib.load(f)
    problems = []
    if not config.get("default", {}).get("build", {}).get("parameters", {}).get("build_in_source"):
        problems.append("samconfig.toml: sam build must build in source (build_in_source = true)")
    envs = [e for e, v in config.items() if e != "default" and isinstance(v, dict) and "deploy" in v]
    if sorted(envs) != ["prod", "staging"]:
        problems.append(f"samconfig.toml: environments {envs}, not staging and prod")
    images = any(
        (r.get("Properties") or {}).get("PackageType") == "Image"
        for r in template.get("Resources", {}).values()
        if r.get("Type") == "AWS::Serverless::Function"
    )
    for env in envs:
        deploy = config[env]["deploy"]["parameters"]
        if images and not (deploy.get("resolve_image_repos") or deploy.get("image_repositories")):
            problems.append(f"{env}: a function is a container image, and sam deploy is given no repository for it (resolve_image_repos = true)")
        given = {}
        for kv in config[env]["deploy"]["parameters"].get("parameter_overrides", []):
            key, _, value = kv.partition("=")
            given[key] = value
        for key, value in given.items():
            spec = parameters.get(key)
            if spec is None:
                problems.append(f"{env}: {key} is not a parameter of the template")
                continue
            allowed = spec.get("AllowedValues")
            if allowed and value not in [str(a) for a in allowed]:
                problems.append(f"{env}: {key}={value} is not one of {allowed}")
            pattern = spec.get("AllowedPattern")
            if pattern and not re.fullmatch(pattern, value):
                problems.append(f"{env}: {key}={value} does not match {pattern}")
            if spec.get("Type") == "Number":
                number = float(value)
                if "MinValue" in spec and number < float(spec["MinValue"]):
                    problems.append(f"{env}: {key}={value} is below {spec['MinValue']}")
                if "MaxValue" in spec and number > float(spec["MaxValue"]):
                    problems.append(f"{env}: {key}={value} is above {spec['MaxValue']}")
        for key, spec in parameters.items():
            if "Default" not in spec and key not in given:
                problems.append(f"{env}: {key} has no default and is not given")
        path = os.path.join(params_dir, f"{env}.json")
        try:
            with open(path) as f:
                file = {p["ParameterKey"]: p["ParameterValue"] for p in json.load(f)}
        except OSError:
            problems.append(f"{env}: no {path}")
            continue
        if file != given:
            problems.append(f"{env}: {path} and samconfig.toml differ")
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
