"""smmcl-bag-eval with an unregistered thermal camera: real MSRS pairs in a real bag."""

import json

import cv2
import numpy as np
import pytest

from smmcl_core.data.registration import warp_homography
from smmcl_ros import topics
from smmcl_ros.bags import eval_cli
from smmcl_ros.bags.messages import image_message, make_header
from smmcl_ros.bags.reader import BagReader
from smmcl_ros.bags.writer import BagWriter
from smmcl_ros.demo.bundled import DEMO_CHECKPOINT
from smmcl_ros.messages.image_codec import image_to_array

RGB_TOPIC, AUX_TOPIC = '/camera/color/image_raw', '/thermal/image_raw'
TO_AUX = np.array([[0.5, -0.013, -3.0], [0.013, 0.5, 4.0], [0.0, 0.0, 1.0]])  # RGB -> aux px


@pytest.fixture(scope='module')
def unregistered_bag(tmp_path_factory):
    """Three MSRS pairs at 320x240 RGB, the thermal re-imaged by a 160x128 camera."""
    from conftest import SHARED_DATA

    folder = SHARED_DATA / 'msrs_night'
    if not folder.is_dir():
        pytest.skip(f'real sample data not found at {folder}')
    path = tmp_path_factory.mktemp('bags') / 'unregistered'
    rgbs, auxes = [], []
    with BagWriter(path, 'mcap') as writer:
        store = writer.typestore
        for i, name in enumerate(('00004N', '00008N', '00012N')):
            rgb = cv2.resize(cv2.imread(str(folder / 'visible' / f'{name}.png'))[:, :, ::-1],
                             (320, 240), interpolation=cv2.INTER_AREA)
            thermal = cv2.resize(cv2.imread(str(folder / 'thermal' / f'{name}.png'), -1),
                                 (320, 240), interpolation=cv2.INTER_AREA)
            aux = cv2.warpPerspective(thermal, TO_AUX, (160, 128))
            stamp = 1_700_000_000_000_000_000 + i * 100_000_000
            writer.write(RGB_TOPIC, image_message(store, rgb, 'rgb8', make_header(
                store, stamp, 'rgb')), stamp)
            writer.write(AUX_TOPIC, image_message(store, aux, 'mono8', make_header(
                store, stamp, 'thermal')), stamp)
            rgbs.append(rgb)
            auxes.append(aux)
    return path, rgbs, auxes


def _eval(bag, tmp_path, *extra):
    report = tmp_path / 'report.json'
    code = eval_cli.main([str(bag), '--checkpoint', str(DEMO_CHECKPOINT), '--rgb-topic',
                          RGB_TOPIC, '--aux-topic', AUX_TOPIC, '--report', str(report),
                          '--device', 'cpu', '--backend', 'torch', '--no-progress', *extra])
    return code, json.loads(report.read_text())


def test_default_refuses_other_aspect_ratio(unregistered_bag, tmp_path):
    bag, _, _ = unregistered_bag
    code, report = _eval(bag, tmp_path)
    assert code == 1  # nothing could be evaluated
    assert report['frames']['evaluated'] == 0
    assert report['warnings'] == {'aspect_mismatch': 3}


def test_homography_flag_registers_like_the_node(unregistered_bag, tmp_path):
    from smmcl_core.segmenter import Segmenter

    bag, rgbs, auxes = unregistered_bag
    H = np.linalg.inv(TO_AUX)
    code, report = _eval(bag, tmp_path, '--aux-registration', 'homography', '--aux-homography',
                         *[repr(float(v)) for v in H.ravel()], '--output-bag',
                         str(tmp_path / 'out'))
    assert code == 0, report
    assert report['frames']['evaluated'] == 3 and not report['warnings']
    segmenter = Segmenter.from_checkpoint(DEMO_CHECKPOINT, device='cpu', backend='torch')
    with BagReader(tmp_path / 'out') as reader:
        masks = [image_to_array(reader.deserialize(m)) for m in reader.messages()
                 if m.topic == topics.BAG_MASK]
    assert len(masks) == 3
    for rgb, aux, mask in zip(rgbs, auxes, masks):
        registered = warp_homography(aux, H, (240, 320), 'thermal')
        np.testing.assert_array_equal(mask, segmenter.predict(rgb, registered))


def test_bad_registration_flags_are_named(unregistered_bag, tmp_path, capsys):
    bag, _, _ = unregistered_bag
    assert eval_cli.main([str(bag), '--checkpoint', str(DEMO_CHECKPOINT), '--no-progress',
                          '--aux-registration', 'homography']) == 2
    assert 'aux_homography is empty' in capsys.readouterr().err
    assert eval_cli.main([str(bag), '--checkpoint', str(DEMO_CHECKPOINT), '--no-progress',
                          '--aux-registration', 'depth']) == 2
    assert '--aux-camera-info-topic' in capsys.readouterr().err  # /tf_static: test_bag_tf_static


def _msrs_folder(root, aux_of=lambda thermal: thermal, extra=None):
    """Three MSRS pairs at 320x240 as a folder dataset (classes.yaml, labels in the RGB frame)."""
    import yaml

    from conftest import SHARED_DATA

    folder = SHARED_DATA / 'msrs_night'
    if not folder.is_dir():
        pytest.skip(f'real sample data not found at {folder}')
    for sub in ('rgb', 'aux', 'label'):
        (root / sub).mkdir(parents=True)
    names = ('00004N', '00008N', '00012N')
    for name in names:
        rgb = cv2.resize(cv2.imread(str(folder / 'visible' / f'{name}.png')), (320, 240),
                         interpolation=cv2.INTER_AREA)
        thermal = cv2.resize(cv2.imread(str(folder / 'thermal' / f'{name}.png'), -1),
                             (320, 240), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(root / 'rgb' / f'{name}.png'), rgb)
        cv2.imwrite(str(root / 'aux' / f'{name}.png'), aux_of(thermal))
        cv2.imwrite(str(root / 'label' / f'{name}.png'), (thermal > 150).astype(np.uint8))
    (root / 'test.txt').write_text('\n'.join(names) + '\n')
    (root / 'classes.yaml').write_text(yaml.safe_dump({
        'class_names': ['background', 'warm'], 'aux_modality': 'thermal', **(extra or {})}))
    return root


def test_make_bag_writes_an_unregistered_aux_camera_and_the_eval_flags(tmp_path, capsys):
    from smmcl_core.segmenter import Segmenter
    from smmcl_ros.bags import make_bag

    root = _msrs_folder(tmp_path / 'folder')
    H = np.linalg.inv(TO_AUX)
    code = make_bag.main([str(tmp_path / 'bag'), '--dataset', 'folder', '--root', str(root),
                          '--rgb-topic', RGB_TOPIC, '--aux-topic', AUX_TOPIC, '--no-progress',
                          '--aux-homography', *[repr(float(v)) for v in H.ravel()],
                          '--aux-size', '128', '160'])
    out = capsys.readouterr()
    assert code == 0, out.err
    flags = out.out.strip().split()
    assert flags[:2] == ['smmcl-bag-eval', str(tmp_path / 'bag')] and 'aux written ' \
        'unregistered (160x128)' in out.err
    with BagReader(tmp_path / 'bag') as reader:
        auxes = [reader.deserialize(m) for m in reader.messages() if m.topic == AUX_TOPIC]
    assert [(m.width, m.height, m.header.frame_id) for m in auxes] == \
        [(160, 128, make_bag.AUX_FRAME_ID)] * 3
    registered = cv2.imread(str(root / 'aux' / '00004N.png'), -1)
    np.testing.assert_array_equal(image_to_array(auxes[0]), warp_homography(
        registered, np.linalg.inv(H), (128, 160), 'thermal'))
    # The printed flags register it back: every frame evaluated, masks as the Segmenter's.
    code, report = _eval(tmp_path / 'bag', tmp_path, *flags[2:], '--output-bag',
                         str(tmp_path / 'out'))
    assert code == 0 and report['frames']['evaluated'] == 3 and not report['warnings']
    segmenter = Segmenter.from_checkpoint(DEMO_CHECKPOINT, device='cpu', backend='torch',
                                          aux_registration='homography', aux_homography=H)
    with BagReader(tmp_path / 'out') as reader:
        mask = next(image_to_array(reader.deserialize(m)) for m in reader.messages()
                    if m.topic == topics.BAG_MASK)
    rgb = cv2.imread(str(root / 'rgb' / '00004N.png'))[:, :, ::-1]
    np.testing.assert_array_equal(mask, segmenter.predict(np.ascontiguousarray(rgb),
                                                          image_to_array(auxes[0])))
    assert make_bag.main([str(tmp_path / 'bag2'), '--dataset', 'folder', '--root', str(root),
                          '--aux-homography', *['1.0'] * 9]) == 2
    assert '--aux-homography and --aux-size go together' in capsys.readouterr().err


def test_make_bag_registers_a_folder_of_unregistered_pairs(tmp_path, capsys):
    from smmcl_ros.bags import make_bag

    H = np.linalg.inv(TO_AUX)
    root = _msrs_folder(tmp_path / 'folder', lambda t: cv2.warpPerspective(t, TO_AUX, (160, 128)),
                        {'aux_registration': 'homography', 'aux_homography': H.ravel().tolist()})
    assert make_bag.main([str(tmp_path / 'bag'), '--dataset', 'folder', '--root', str(root),
                          '--aux-topic', AUX_TOPIC, '--no-progress']) == 0
    with BagReader(tmp_path / 'bag') as reader:
        aux = next(image_to_array(reader.deserialize(m)) for m in reader.messages()
                   if m.topic == AUX_TOPIC)
    raw = cv2.imread(str(root / 'aux' / '00004N.png'), -1)
    np.testing.assert_array_equal(aux, warp_homography(raw, H, (240, 320), 'thermal'))
    # Without aux_registration in classes.yaml the other size is refused, naming the file.
    (root / 'classes.yaml').write_text('class_names: [background, warm]\naux_modality: thermal\n')
    assert make_bag.main([str(tmp_path / 'bag2'), '--dataset', 'folder', '--root', str(root),
                          '--no-progress']) == 2
    err = capsys.readouterr().err
    assert '00004N.png: aux image 160x128' in err and 'aux_registration' in err
