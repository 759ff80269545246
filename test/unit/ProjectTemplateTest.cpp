//===- ProjectTemplateTest.cpp - the CMake templates' filler --------------===//

#include "codegen/ProjectTemplate.h"

#include <gtest/gtest.h>

using namespace qdsl::codegen;

namespace {

std::string filled(const std::string &text, const TemplateValues &values) {
  std::string out, error;
  EXPECT_TRUE(fillTemplate(text, values, out, error)) << error;
  return out;
}

std::string refusal(const std::string &text, const TemplateValues &values) {
  std::string out, error;
  EXPECT_FALSE(fillTemplate(text, values, out, error)) << out;
  return error;
}

TEST(ProjectTemplate, ValuesAndNestedSections) {
  TemplateValues v;
  v.values = {{"NAME", "Model"}, {"LIST", "a b"}, {"EMPTY", ""}};
  v.switches = {{"ON", true}, {"OFF", false}};
  const std::string text = "# what this template is\n"
                           "# (dropped)\n"
                           "project(@NAME@ C)\n"
                           "@IF ON@\n"
                           "on @LIST@@NAME@\n"
                           "@IF OFF@\n"
                           "inner off\n"
                           "@END@\n"
                           "@IF !OFF@\n"
                           "inner not off\n"
                           "@END@\n"
                           "@END@\n"
                           "@IF OFF@\n"
                           "off\n"
                           "@END@\n"
                           "@EMPTY@\n"
                           "x@EMPTY@y\n"
                           "\n"
                           "last\n";
  EXPECT_EQ(filled(text, v), "project(Model C)\non a bModel\ninner not off\nxy\n\nlast\n");
}

TEST(ProjectTemplate, UnknownNamesAndUnbalancedSectionsAreRefused) {
  TemplateValues v;
  v.values = {{"A", "1"}};
  v.switches = {{"S", true}};
  EXPECT_EQ(refusal("x\n@B@\n", v), "line 2: no value 'B'");
  EXPECT_EQ(refusal("@IF T@\n@END@\n", v), "line 1: no switch 'T'");
  EXPECT_EQ(refusal("@IF S@\nx\n", v), "an @IF without its @END@");
  EXPECT_EQ(refusal("x\n@END@\n", v), "line 2: @END@ without @IF");
  EXPECT_EQ(refusal("mail me@home\n", v), "line 1: an '@' without its closing '@'");
}

} // namespace
