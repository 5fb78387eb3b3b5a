"""python infer.py --ckpt anime.ckpt photo.jpg  (same as python -m stylenet.infer)"""

import sys

from stylenet.infer import main

if __name__ == "__main__":
    sys.exit(main())
