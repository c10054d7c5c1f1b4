from freezegen.cli import main

main()
