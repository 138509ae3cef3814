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
    params:
        tolerances=json.dumps(config["tolerances"]),
    shell:
        "{PYTHON} -m repro table --table 3 --eval {input.evals} --published {PUBLISHED}"
        " --tolerances '{params.tolerances}' --extra-published {input.literature} --out-csv {output.csv} --out-tex {output.tex} > {log} 2>&1"
