"""BibTeX of the papers behind daclip-kit's models (data only; model cards cite them).

Titles, authors and venues as the DA-CLIP paper's references list them.
"""

from __future__ import annotations

DACLIP = """@inproceedings{luo2024controlling,
  title={Controlling Vision-Language Models for Multi-Task Image Restoration},
  author={Luo, Ziwei and Gustafsson, Fredrik K. and Zhao, Zheng and Sj{\\"o}lund, Jens and Sch{\\"o}n, Thomas B.},
  booktitle={International Conference on Learning Representations (ICLR)},
  year={2024}
}"""

IRSDE = """@inproceedings{luo2023image,
  title={Image Restoration with Mean-Reverting Stochastic Differential Equations},
  author={Luo, Ziwei and Gustafsson, Fredrik K. and Zhao, Zheng and Sj{\\"o}lund, Jens and Sch{\\"o}n, Thomas B.},
  booktitle={Proceedings of the 40th International Conference on Machine Learning (ICML)},
  series={PMLR},
  volume={202},
  pages={23045--23066},
  year={2023}
}"""

NAFNET = """@inproceedings{chen2022simple,
  title={Simple Baselines for Image Restoration},
  author={Chen, Liangyu and Chu, Xiaojie and Zhang, Xiangyu and Sun, Jian},
  booktitle={European Conference on Computer Vision (ECCV)},
  pages={17--33},
  year={2022}
}"""

RESTORMER = """@inproceedings{zamir2022restormer,
  title={Restormer: Efficient Transformer for High-Resolution Image Restoration},
  author={Zamir, Syed Waqas and Arora, Aditya and Khan, Salman and Hayat, Munawar and Khan, Fahad Shahbaz
          and Yang, Ming-Hsuan},
  booktitle={IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  pages={5728--5739},
  year={2022}
}"""

PROMPTIR = """@inproceedings{potlapalli2023promptir,
  title={PromptIR: Prompting for All-in-One Blind Image Restoration},
  author={Potlapalli, Vaishnav and Zamir, Syed Waqas and Khan, Salman and Khan, Fahad Shahbaz},
  booktitle={Advances in Neural Information Processing Systems (NeurIPS)},
  year={2023}
}"""

AIRNET = """@inproceedings{li2022all,
  title={All-in-One Image Restoration for Unknown Corruption},
  author={Li, Boyun and Liu, Xiao and Hu, Peng and Wu, Zhongqin and Lv, Jiancheng and Peng, Xi},
  booktitle={IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  pages={17452--17462},
  year={2022}
}"""
