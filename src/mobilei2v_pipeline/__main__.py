from mobilei2v_pipeline.cli import main

main()
