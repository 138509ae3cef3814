# Tables 3 and 5: every row's evaluation results beside the published numbers -> tables/tableN.csv and .tex.
import platform

TABLE5 = config["table5"]


def machine():
    """The machine the workflow runs on (its jobs too, unless a cluster profile sends them elsewhere)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores" + ("" if config["device"] == "cpu" else f"; device {config['device']}")


def budget(model):
    """One sentence on what a row was trained with (the train section and the model's own train overrides)."""
    first = stage1_of(model)
    steps = []
    for m in ([first] if first else []) + [model]:
        tc = {**config["train"], **((config.get("models") or {}).get(m) or {}).get("train", {})}
        steps.append(str(tc["steps"]))
    t = config["train"]
    return (f"{' + '.join(steps)} steps (stage 1 + stage 2)" if first else f"{steps[0]} steps") + (
        f" of batch {t['batch']}, {t['patch']}x{t['patch']} LR patches from {' + '.join(t['sets'])}")


def footnotes(models):
    """--footnote arguments: the profile, each trained row's budget, the seeds and the machine."""
    trained = [m for m in models if m not in UNTRAINED]
    budgets = sorted({budget(m) for m in trained})
    notes = [f"Profile: {config.get('profile_name', 'custom')} (every trained row on the same data and budget: "
             + "; ".join(budgets) + f"); training seeds {', '.join(map(str, seeds()))}.",
             f"Workflow host: {machine()}."]
    return " ".join("--footnote " + shlex.quote(n) for n in notes)


def absent_args(wanted):
    """--absent-dataset arguments for the configured sets that are not here (their cells say why)."""
    here = set(present_sets(wanted, quiet=True))
    return " ".join(f"--absent-dataset {d} " + shlex.quote(f"{d} is not in data_mirror or data_dir")
                    for d in wanted if d not in here)


def table3_inputs():
    t = config["table3"]
    datasets = present_sets(t["datasets"])
    evals = [f for m in t["models"] for f in eval_files(m, datasets, t["scale"])]
    official = {m: expand("results/eval/{model}/official/{dataset}_x{scale}.csv", model=m, dataset=datasets,
                          scale=t["scale"]) for m in (config.get("official_weights") or {}) if m in t["models"]}
    return evals, official


def table5_rows():
    """Table 5's rows, name -> result files (one per seed): `component=variant` on the block's dataset.

    A block's own choice ("ours": omni, ttt, cab, 2d) is the Table 3 DiffRWKVIR row itself, not a retraining.
    Blocks whose dataset is not here have no rows (their cells say the dataset is absent).
    """
    here = set(present_sets([g["dataset"] for g in TABLE5["groups"].values()], quiet=True))
    rows = {}
    for component, group in TABLE5["groups"].items():
        if group["dataset"] not in here:
            continue
        for variant in group["variants"]:
            if variant == group["ours"]:
                pattern = "results/eval/diffrwkvir/seed{seed}/{dataset}_x{scale}.csv"
            else:
                pattern = f"results/ablation/{component}/{variant}/eval/seed{{seed}}/{{dataset}}_x{{scale}}.csv"
            rows[f"{component}={variant}"] = expand(pattern, seed=seeds(), dataset=group["dataset"],
                                                    scale=TABLE5["scale"])
    return rows


rule table3:
    input:
        evals=table3_inputs()[0],
        official=[f for files in table3_inputs()[1].values() for f in files],
        published=os.path.join(PUBLISHED, "table3.csv"),
        literature=os.path.join(PUBLISHED, "bicubic_literature.csv"),
    output:
        csv=report("tables/table3.csv", category="Tables", caption="../../docs/figures/table.rst"),
        tex="tables/table3.tex",
    log:
        "logs/tables/table3.log",
    threads: job_settings("table")["threads"]
    resources:
        mem_mb=job_settings("table")["mem_mb"],
        runtime=job_settings("table")["runtime"],
    params:
        published_dir=PUBLISHED,
        tolerances=json.dumps(config["tolerances"]),
        official=" ".join(f"--official {m} {f}" for m, files in table3_inputs()[1].items() for f in files),
        absent=absent_args(config["table3"]["datasets"]),
        footnotes=footnotes(config["table3"]["models"]),
    shell:
        "{PYTHON} -m repro table --table 3 --eval {input.evals} {params.official} --published {params.published_dir}"
        " --tolerances '{params.tolerances}' --extra-published {input.literature} {params.absent} {params.footnotes}"
        " --out-csv {output.csv} --out-tex {output.tex} > {log} 2>&1"


rule table5:
    input:
        evals=[f for files in table5_rows().values() for f in files],
        # Bicubic on each block's set: the SAM consistency check compares the published SAM with it
        bicubic=expand("results/eval/bicubic/{dataset}_x{scale}.csv", scale=TABLE5["scale"],
                       dataset=sorted({g["dataset"] for g in TABLE5["groups"].values()}
                                      & set(present_sets([g["dataset"] for g in TABLE5["groups"].values()], quiet=True)))),
        published=os.path.join(PUBLISHED, "table5.csv"),
    output:
        csv=report("tables/table5.csv", category="Tables", caption="../../docs/figures/table.rst"),
        tex="tables/table5.tex",
    log:
        "logs/tables/table5.log",
    threads: job_settings("table")["threads"]
    resources:
        mem_mb=job_settings("table")["mem_mb"],
        runtime=job_settings("table")["runtime"],
    params:
        published_dir=PUBLISHED,
        tolerances=json.dumps(config["tolerances"]),
        rows=" ".join(f"--eval-as {name} {f}" for name, files in table5_rows().items() for f in files),
        absent=absent_args([g["dataset"] for g in TABLE5["groups"].values()]),
        footnotes=footnotes(["diffrwkvir"]),
    shell:
        "{PYTHON} -m repro table --table 5 {params.rows} --bicubic-eval {input.bicubic} --published {params.published_dir}"
        " --tolerances '{params.tolerances}' {params.absent} {params.footnotes}"
        " --out-csv {output.csv} --out-tex {output.tex} > {log} 2>&1"
