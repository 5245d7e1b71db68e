from emoxformer.labels import (
    EMOTIONS, FER_FOLDER_TO_EMOTION, FER_INDEX_TO_EMOTION, LABEL_TO_INDEX, MELD_TO_EMOTION, RAVDESS_EMOTIONS,
)


def test_taxonomy_is_the_seven_emotions_in_order():
    assert EMOTIONS == ("anger", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert [LABEL_TO_INDEX[e] for e in EMOTIONS] == list(range(7))


def test_meld_maps_joy_to_happy_and_covers_all_classes():
    assert MELD_TO_EMOTION["joy"] == "happy"
    assert MELD_TO_EMOTION["sadness"] == "sad"
    assert set(MELD_TO_EMOTION.values()) == set(EMOTIONS)


def test_ravdess_calm_is_neutral_and_codes_map_onto_taxonomy():
    assert RAVDESS_EMOTIONS[2] == ("calm", "neutral")
    assert {code: label for code, (_, label) in RAVDESS_EMOTIONS.items()} == {
        1: "neutral", 2: "neutral", 3: "happy", 4: "sad", 5: "anger", 6: "fear", 7: "disgust", 8: "surprise",
    }


def test_fer_indices_and_folders():
    assert [FER_INDEX_TO_EMOTION[i] for i in range(7)] == ["anger", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert FER_FOLDER_TO_EMOTION["angry"] == "anger"
    assert set(FER_FOLDER_TO_EMOTION.values()) == set(EMOTIONS)
