# DiffRWKVIR reproduction pipeline: data -> train -> evaluate -> tables (2, 3, 5), profile -> table 4, figures, report.
#   snakemake --cores 2 tables/table3.tex                              default profile (config/config.yaml, CPU)
#   snakemake --cores 2 --configfile config/smoke.yaml ...             CI profile
#   snakemake --workflow-profile profiles/slurm --configfile config/paper.yaml ...   the paper's settings on SLURM
import os

from snakemake.utils import min_version, validate

min_version("9.1.0")


report: "docs/figures/workflow.rst"


# The code and the published tables live beside this file; results go to the working directory (--directory).
configfile: os.path.join(workflow.basedir, "config/config.yaml")


validate(config, "repro/schemas/config.schema.yaml")


include: "repro/rules/common.smk"
include: "repro/rules/data.smk"
include: "repro/rules/train.smk"
include: "repro/rules/evaluate.smk"
include: "repro/rules/tables.smk"
include: "repro/rules/profile.smk"
include: "repro/rules/figures.smk"
include: "repro/rules/inpaint.smk"


rule all:
    default_target: True
    input:
        "tables/table2.csv",
        "tables/table2.tex",
        "tables/table3.csv",
        "tables/table3.tex",
        "tables/table5.csv",
        "tables/table5.tex",
        "tables/figures/fig10_grid.png",
        expand("tables/figures/fig9_{iset}.png", iset=table2_sets()),
        "tables/figures/psnr_vs_params.png",
        "tables/figures/psnr_vs_time.png",
        "tables/table4.csv",
        "tables/table4.tex",
