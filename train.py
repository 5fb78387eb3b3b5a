"""python train.py style=anime  (same as python -m stylenet.train)"""

from stylenet.train import main

if __name__ == "__main__":
    main()
