rule prepare_sr:
    output:
        directory("results/prepared/{dataset}_x{scale}"),
    log:
        "logs/prepare/{dataset}_x{scale}.log",
    params:
        mirror=mirror_arg(),
        data_dir=config["data_dir"],
    shell:
        "{PYTHON} -m repro prepare --dataset {wildcards.dataset} --scale {wildcards.scale} --out {output}"
        " {params.mirror} --data-dir {params.data_dir} > {log} 2>&1"
