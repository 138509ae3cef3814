# Table 4: one `python -m repro profile` job per model, then the table beside the published values.
# Defined only when the config has a table4 section (config/config.yaml has one; smoke.yaml makes it tiny).
import shlex

if "table4" in config:

    TABLE4 = config["table4"]

    def profile_args(model):
        """The profile options from the config's table4 section, as command-line arguments.

        Args:
            model: the registry name of the job's model (picks its overrides).
        """
        t = TABLE4
        args = [f"--input {t['input']}" if t.get("input") else f"--preset {t.get('preset') or 'paper'}"]
        args += [f"--warmup {t.get('warmup', 1)}", f"--repeats {t.get('repeats', 3)}",
                 f"--train-batch {t.get('train_batch', 2)}", f"--train-patch {t.get('train_patch', 48)}"]
        if t.get("train_steps"):
            args.append(f"--train-steps {t['train_steps']}")
        if t.get("eval_sets"):
            args.append("--eval-sets " + " ".join(t["eval_sets"]))
        if not t.get("memory", True):
            args.append("--no-memory")
        if t.get("model_config"):
            args.append("--model-config " + shlex.quote(os.path.join(REPO, t["model_config"])))
        for key, value in ((t.get("overrides") or {}).get(model) or {}).items():
            args.append("--set " + shlex.quote(f"{key}={value!r}"))
        return " ".join(args)

    rule profile:
        output:
            "results/profile/{model}_x{scale}.json",
        log:
            "logs/profile/{model}_x{scale}.log",
        benchmark:
            "results/benchmarks/profile/{model}_x{scale}.tsv"
        threads: TABLE4["resources"]["threads"]
        resources:
            mem_mb=TABLE4["resources"]["mem_mb"],
            runtime=TABLE4["resources"]["runtime"],
            gpu=TABLE4["resources"].get("gpu", 0),
        params:
            args=lambda wildcards: profile_args(wildcards.model),
            device=config["device"],
        shell:
            "{PYTHON} -m repro profile --model {wildcards.model} --scale {wildcards.scale} {params.args}"
            " --device {params.device} --threads {threads} --out {output} > {log} 2>&1"

    rule table4:
        input:
            profiles=expand("results/profile/{model}_x{scale}.json", model=TABLE4["models"], scale=TABLE4["scale"]),
            published=os.path.join(PUBLISHED, "table4.csv"),
        output:
            csv="tables/table4.csv",
            tex="tables/table4.tex",
        log:
            "logs/tables/table4.log",
        threads: job_settings("table")["threads"]
        resources:
            mem_mb=job_settings("table")["mem_mb"],
            runtime=job_settings("table")["runtime"],
        params:
            published_dir=PUBLISHED,
            tolerances=json.dumps(config["tolerances"]),
        shell:
            "{PYTHON} -m repro table --table 4 --profile {input.profiles} --published {params.published_dir}"
            " --tolerances '{params.tolerances}' --out-csv {output.csv} --out-tex {output.tex} > {log} 2>&1"
