rule table3:
    input:
        evals=expand(
            "results/eval/{model}/{dataset}_x{scale}.csv",
            model=config["table3"]["models"],
            dataset=present_sets(config["table3"]["datasets"]),
            scale=config["table3"]["scale"],
        ),
        published=os.path.join(PUBLISHED, "table3.csv"),
        literature=os.path.join(PUBLISHED, "bicubic_literature.csv"),
    output:
        csv="tables/table3.csv",
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
    shell:
        "{PYTHON} -m repro table --table 3 --eval {input.evals} --published {params.published_dir}"
        " --tolerances '{params.tolerances}' --extra-published {input.literature} --out-csv {output.csv} --out-tex {output.tex} > {log} 2>&1"
