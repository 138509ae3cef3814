from repro.figures.cli import main

main()
