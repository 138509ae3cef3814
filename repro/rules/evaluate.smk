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
    params:
        weights=weights_arg(),
        device=config.get("device", "cpu"),
    shell:
        "{PYTHON} -m repro evaluate --model {wildcards.model} --dataset {wildcards.dataset} --scale {wildcards.scale}"
        " --prepared {input} --out results/eval/{wildcards.model} {params.weights} --device {params.device} --quiet"
        " > {log} 2>&1"
