def main(argv=None):
    print("soil-drift"); return 0
