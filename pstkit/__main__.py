from pstkit.cli import main

main()
