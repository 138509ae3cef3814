rule prepare_sr:
    output:
        directory("results/prepared/{dataset}_x{scale}"),
    log:
        "logs/prepare/{dataset}_x{scale}.log",
    threads: job_settings("prepare")["threads"]
    resources:
        mem_mb=job_settings("prepare")["mem_mb"],
        runtime=job_settings("prepare")["runtime"],
    params:
        mirror=mirror_arg(),
        data_dir=config["data_dir"],
    # prepare verifies the set's checksums (the DAG only saw that its files are there)
    shell:
        "{PYTHON} -m repro prepare --dataset {wildcards.dataset} --scale {wildcards.scale} --out {output}"
        " {params.mirror} --data-dir {params.data_dir} --threads {threads} > {log} 2>&1"
