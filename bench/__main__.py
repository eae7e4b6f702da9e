"""`python -m bench` (`make bench`): one benchmark run, as `bench.run` describes."""

from bench.run import main

main()
