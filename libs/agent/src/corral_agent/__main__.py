"""`python3 -m corral_agent --socket PATH --workdir DIR`"""
from corral_agent.command_line import main

if __name__ == "__main__":
    raise SystemExit(main())
