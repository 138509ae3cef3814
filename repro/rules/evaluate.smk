rule evaluate_sr:
    input:
        "results/prepared/{dataset}_x{scale}",
    output:
        csv="results/eval/{model}/{dataset}_x{scale}.csv",
        meta="results/eval/{model}/{dataset}_x{scale}.json",
    log:
        "logs/evaluate/{model}/{dataset}_x{scale}.log",
    benchmark:
        "results/benchmarks/evaluate/{model}/{dataset}_x{scale}.tsv"
    threads: job_settings("evaluate")["threads"]
    resources:
        mem_mb=job_settings("evaluate")["mem_mb"],
        runtime=job_settings("evaluate")["runtime"],
    params:
        weights=weights_arg(),
        device=config["device"],
    shell:
        "{PYTHON} -m repro evaluate --model {wildcards.model} --dataset {wildcards.dataset} --scale {wildcards.scale}"
        " --prepared {input} --out-csv {output.csv} --out-json {output.meta} {params.weights} --device {params.device}"
        " --threads {threads} --quiet > {log} 2>&1"
