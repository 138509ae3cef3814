# DiffRWKVIR reproduction pipeline: data -> (train) -> evaluate -> (profile) -> tables.
#   snakemake --cores 2 tables/table3.tex                      default profile (config/config.yaml)
#   snakemake --cores 2 --configfile config/smoke.yaml ...     CI profile
import os

from snakemake.utils import min_version, validate

min_version("9.1.0")


# The code and the published tables live beside this file; results go to the working directory (--directory).
configfile: os.path.join(workflow.basedir, "config/config.yaml")


validate(config, "repro/schemas/config.schema.yaml")


include: "repro/rules/common.smk"
include: "repro/rules/data.smk"
include: "repro/rules/evaluate.smk"
include: "repro/rules/tables.smk"
include: "repro/rules/profile.smk"


rule all:
    default_target: True
    input:
        "tables/table3.csv",
        "tables/table3.tex",
        "tables/table4.csv",
        "tables/table4.tex",
