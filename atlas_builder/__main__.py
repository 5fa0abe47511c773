from atlas_builder.cli import main

main()
